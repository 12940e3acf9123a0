//! A snapshot-only server on the core feature set: no sled, tantivy, candle
//! or clap. It indexes a small catalogue's SIDs in memory, writes a
//! snapshot, maps it, serves a line protocol on loopback (`ITEMS 3,17`,
//! `NEXT 3`, `KEY item-00042`) and checks every answer against the index.
//!
//! ```sh
//! cargo run --release --no-default-features --example snapshot_server
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use adasid::keymap::KeyMap;
use adasid::sid::{format_tokens, parse_tokens};
use adasid::snapshot::{self, Snapshot};
use adasid::{Index, ReadView, SidLayout, State, Token};

const ITEMS: u32 = 5_000;
const K: u32 = 64;

/// Item `id`'s full SID: three semantic tokens unique per item, then the
/// disambiguation token 0.
fn sid(id: u32) -> [Token; 4] {
    [
        (id % K) as Token,
        (id / K % K) as Token,
        (id / (K * K) % K) as Token,
        0,
    ]
}

/// One request line, answered from `view`.
fn answer(view: &dyn ReadView, line: &str) -> String {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    let prefix = || parse_tokens(arg).unwrap_or_default();
    match verb {
        "ITEMS" => match view.items(&prefix()) {
            Some(p) => format!("{} {:?}", p.len(), p.to_sorted_vec()),
            None => "0 []".to_string(),
        },
        "NEXT" => view
            .next_tokens(&prefix())
            .map_or("invalid".to_string(), |t| format_tokens(&t)),
        "KEY" => view.id(arg).map_or("unknown".to_string(), |id| {
            format_tokens(view.sid(id).unwrap().0)
        }),
        _ => "error: unknown verb".to_string(),
    }
}

fn main() -> adasid::Result<()> {
    let layout = SidLayout::new(3, K, 0)?;
    let mut index = Index::new(layout);
    let mut keys = KeyMap::default();
    for id in 0..ITEMS {
        index.insert(id, &sid(id), &[])?;
        keys.insert(&format!("item-{id:05}"), id);
    }
    let dir = tempfile::tempdir().map_err(|e| adasid::Error::io("temp dir", e))?;
    let path = dir.path().join("index.snap");
    let bytes = snapshot::write(&index, &keys, &path)?;
    let snap = Snapshot::open(&path)?;
    snap.verify()?;

    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| adasid::Error::io("bind", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| adasid::Error::io("bind", e))?;
    let requests = [
        "ITEMS 3,17",
        "ITEMS 3",
        "NEXT 3",
        "NEXT ",
        "KEY item-00042",
        "KEY nobody",
        "ITEMS 63,63,63",
    ];
    let answers = std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (conn, _) = listener.accept().expect("one client");
            let mut out = conn.try_clone().expect("socket");
            for line in BufReader::new(conn).lines() {
                let line = line.expect("request line");
                writeln!(out, "{}", answer(&snap, &line)).expect("reply");
            }
        });
        let conn = TcpStream::connect(addr).expect("connect on loopback");
        let mut replies = BufReader::new(conn.try_clone().expect("socket")).lines();
        let mut w = conn;
        let got: Vec<String> = requests
            .iter()
            .map(|r| {
                writeln!(w, "{r}").expect("send");
                replies.next().expect("a reply").expect("reply line")
            })
            .collect();
        // End of requests: the server's read loop sees EOF and returns.
        w.shutdown(std::net::Shutdown::Write).expect("shutdown");
        server.join().expect("server thread");
        got
    });

    // The snapshot answers exactly as the index it was written from.
    let live = State::new(index, keys);
    for (request, got) in requests.iter().zip(&answers) {
        let want = answer(&live, request);
        assert_eq!(got, &want, "{request}");
        println!(
            "{request:<16} -> {}",
            got.chars().take(60).collect::<String>()
        );
    }
    println!(
        "{} requests over loopback answered from a {bytes}-byte snapshot of {ITEMS} items, all equal to the index",
        requests.len()
    );
    Ok(())
}

//! A new database's first batch as a snapshot source: its publication is
//! written straight from the planned items, without the in-memory index
//! that mapping the publication would replace at once.

use super::plan::Planned;
use crate::index::{ItemId, sort_by_sid};
use crate::sid::{SidLayout, Token, held_weight};
use crate::snapshot::Source;

#[cfg(test)]
thread_local! {
    /// First batches published straight from the batch on this thread.
    pub(super) static PUBLISHED_STRAIGHT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The planned items of a new database; item `i` of the batch has id `i`.
pub(super) struct FirstBatch<'a> {
    layout: SidLayout,
    planned: &'a [Planned<'a>],
    /// Every item's routing weights as an index holds them, row after row.
    weights: Vec<f32>,
}

impl<'a> FirstBatch<'a> {
    /// The batch, or `None` when its ids are not `0..len` (not a first batch).
    pub(super) fn new(layout: SidLayout, planned: &'a [Planned<'a>]) -> Option<FirstBatch<'a>> {
        if !planned.iter().enumerate().all(|(i, p)| p.id as usize == i) {
            return None;
        }
        let (first, behavior) = (layout.first_behavior(), layout.behavior as usize);
        let weights = planned
            .iter()
            .flat_map(|p| (0..behavior).map(|b| held_weight(&p.weights, p.full[first + b], b)))
            .collect();
        Some(FirstBatch {
            layout,
            planned,
            weights,
        })
    }
}

impl Source for FirstBatch<'_> {
    fn layout(&self) -> SidLayout {
        self.layout
    }

    fn by_sid(&self) -> Vec<ItemId> {
        let ids = self.planned.iter().map(|p| p.id);
        sort_by_sid(&self.layout, ids, |i| &self.planned[i as usize].full)
    }

    fn sid(&self, item: ItemId) -> (&[Token], &[f32]) {
        let behavior = self.layout.behavior as usize;
        let weights = &self.weights[item as usize * behavior..][..behavior];
        (&self.planned[item as usize].full, weights)
    }

    fn key(&self, item: ItemId) -> Option<&str> {
        self.planned.get(item as usize).map(|p| p.key)
    }
}

#[cfg(test)]
mod tests {
    use super::FirstBatch;
    use crate::database::{Database, plan::plan};
    use crate::index::Index;
    use crate::item::NewItem;
    use crate::keymap::KeyMap;
    use crate::sid::{EMPTY, SidLayout};
    use crate::snapshot::assemble;
    use crate::view::State;

    fn layout() -> SidLayout {
        SidLayout::new(3, 8, 1).unwrap()
    }

    /// Shared semantic tokens (automatic and requested disambiguation
    /// tokens), a masked behavior position, given and absent weights.
    fn items() -> Vec<NewItem> {
        let item = |key: &str, tokens: Vec<u16>, weights: Vec<f32>| NewItem {
            key: key.into(),
            tokens,
            weights,
        };
        vec![
            item("z", vec![1, 2, 3], vec![0.5]),
            item("a", vec![1, 2, 3], vec![]),
            item("m", vec![1, 2, 3, 0], vec![0.25]),
            item("q", vec![0, 7, 5], vec![0.0]),
            item("b", vec![0, 7, EMPTY], vec![]),
            item("k", vec![6, 1, 2], vec![1.5]),
        ]
    }

    #[test]
    fn the_first_batch_reads_as_the_index_built_from_it() {
        let items = items();
        let empty = State::new(Index::new(layout()), KeyMap::default());
        let planned = plan(&empty, &items, 0).unwrap();
        let mut index = Index::new(layout());
        let mut keys = KeyMap::default();
        for p in &planned {
            index.insert(p.id, &p.full, &p.weights).unwrap();
            keys.insert(p.key, p.id);
        }
        let batch = FirstBatch::new(layout(), &planned).expect("ids 0..6");
        assert_eq!(
            assemble(&batch).unwrap(),
            assemble(&(&index, &keys)).unwrap()
        );
        // Ids past the store's first: not a first batch.
        let later = plan(&empty, &items, 7).unwrap();
        assert!(FirstBatch::new(layout(), &later).is_none());
    }

    #[test]
    fn a_new_database_publishes_what_a_later_batch_would() {
        let dir = tempfile::tempdir().unwrap();
        let straight = || super::PUBLISHED_STRAIGHT.with(|n| n.get());
        let before = straight();
        let (first, report) =
            Database::create_with(&dir.path().join("a"), layout(), &items(), &[], vec![]).unwrap();
        assert_eq!(
            straight(),
            before + 1,
            "published without the in-memory index"
        );
        let later = Database::create(&dir.path().join("b"), layout()).unwrap();
        assert_eq!(later.upsert(&items()).unwrap(), report);
        assert_eq!(report.inserted, 6);
        let snap = |db: &Database, name: &str| {
            let path = dir.path().join(name);
            db.snapshot(&path).unwrap();
            std::fs::read(path).unwrap()
        };
        assert_eq!(snap(&first, "a.snap"), snap(&later, "b.snap"));
        assert!(first.read().has_base(), "the publication is mapped");
        assert_eq!(first.read().changes(), 0, "nothing held in memory");
        assert_eq!(straight(), before + 1, "a later batch goes through memory");
        let path = dir.path().join("a");
        drop(first);
        let reopened = Database::open(&path).unwrap();
        assert_eq!(snap(&reopened, "c.snap"), snap(&later, "b.snap"));
    }
}

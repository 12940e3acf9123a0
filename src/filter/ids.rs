//! A tantivy collector that gathers matching item ids into a roaring bitmap.

use roaring::RoaringBitmap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::document::ID;

/// Collects the `id` fast field of every matching (live) document.
pub(crate) struct Ids;

pub(crate) struct SegmentIds {
    ids: Column<u64>,
    out: RoaringBitmap,
}

impl Collector for Ids {
    type Fruit = RoaringBitmap;
    type Child = SegmentIds;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentIds> {
        Ok(SegmentIds {
            ids: segment.fast_fields().u64(ID)?,
            out: RoaringBitmap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<RoaringBitmap>) -> tantivy::Result<RoaringBitmap> {
        Ok(fruits.into_iter().fold(RoaringBitmap::new(), |a, b| a | b))
    }
}

impl SegmentCollector for SegmentIds {
    type Fruit = RoaringBitmap;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(id) = self.ids.first(doc).and_then(|v| u32::try_from(v).ok()) {
            self.out.insert(id);
        }
    }

    fn harvest(self) -> RoaringBitmap {
        self.out
    }
}

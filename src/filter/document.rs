//! The tantivy schema and the mapping from a metadata object to a document.

use tantivy::TantivyDocument;
use tantivy::query::QueryParser;
use tantivy::schema::{FAST, Field, INDEXED, OwnedValue, STORED, Schema, TEXT};

pub use crate::data::meta::Meta;

pub(crate) const ID: &str = "id";

/// Handles of the schema's fields.
pub(crate) struct Fields {
    pub schema: Schema,
    pub id: Field,
    title: Field,
    brand: Field,
    categories: Field,
    price: Field,
    attrs: Field,
}

impl Fields {
    pub(crate) fn new() -> Fields {
        let mut b = Schema::builder();
        let id = b.add_u64_field(ID, INDEXED | FAST | STORED);
        let title = b.add_text_field("title", TEXT);
        let brand = b.add_text_field("brand", TEXT);
        let categories = b.add_text_field("categories", TEXT);
        let price = b.add_f64_field("price", INDEXED | FAST);
        let attrs = b.add_json_field("attrs", TEXT | FAST);
        Fields {
            schema: b.build(),
            id,
            title,
            brand,
            categories,
            price,
            attrs,
        }
    }

    /// Bare words search title, brand and categories; clauses must all hold
    /// unless joined by OR.
    pub(crate) fn parser(&self, index: &tantivy::Index) -> QueryParser {
        let mut p = QueryParser::for_index(index, vec![self.title, self.brand, self.categories]);
        p.set_conjunction_by_default();
        p
    }

    /// The document of item `id`. Text fields take strings (and lists of
    /// strings); `price` takes a number; the rest goes to `attrs`.
    pub(crate) fn document(&self, id: u32, meta: &Meta) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.id, id as u64);
        let mut rest = Meta::new();
        for (name, value) in meta {
            let field = match name.as_str() {
                "title" => Some(self.title),
                "brand" => Some(self.brand),
                "categories" => Some(self.categories),
                _ => None,
            };
            match (field, value) {
                (Some(f), v) => add_text(&mut doc, f, v),
                (None, serde_json::Value::Number(n)) if name == "price" => {
                    if let Some(p) = n.as_f64() {
                        doc.add_f64(self.price, p);
                    }
                }
                _ => {
                    rest.insert(name.clone(), value.clone());
                }
            }
        }
        if !rest.is_empty() {
            doc.add_field_value(self.attrs, &OwnedValue::from(rest));
        }
        doc
    }
}

fn add_text(doc: &mut TantivyDocument, field: Field, value: &serde_json::Value) {
    match value {
        serde_json::Value::String(s) => doc.add_text(field, s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| add_text(doc, field, v)),
        serde_json::Value::Number(n) => doc.add_text(field, n.to_string()),
        _ => {}
    }
}

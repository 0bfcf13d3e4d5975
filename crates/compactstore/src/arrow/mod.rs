//! Apache Arrow: a store's entries as record batches, and stores built from record batches (the `arrow`
//! feature).
//!
//! **Export.** [`ExportPlan`] says which columns leave and as which Arrow types (by default the type
//! table below; [`ExportPlan::with_requested`] honours a consumer's requested schema where it only picks
//! members or changes a string type); [`ExportPlan::export`] and [`ExportPlan::export_keyed`] make one
//! record batch per chunk whose rows are the chunk's entries (occupied slots) in slot order, a keyed
//! store's key first.
//!
//! | member type | Arrow type |
//! | --- | --- |
//! | `bool`, `i8` ... `u64`, `f32`, `f64` | `bool`, `int8` ... `uint64`, `float`, `double` |
//! | `Array(T, n)` | `fixed_size_list<T>[n]` |
//! | `Str` / `Bytes` | `large_string` / `large_binary` (or `string`, `string_view`, ... on request) |
//! | `Interned(Str)` / `Interned(Bytes)` | `dictionary<int32, large_string>` / `<int32, large_binary>` |
//! | `Optional(T)` | `T`, nullable (the validity bitmap: LSB first, 1 = valid) |
//! | `Object` | refused (leave it out) |
//!
//! A numeric or array member of a chunk whose entries fill a prefix of its slots leaves without a copy:
//! the Arrow buffer points into the column and holds the column buffer's owner
//! ([`crate::column::AlignedBuf::owner`]), so it stays valid after the store changes, resets, drops the
//! chunk or is dropped itself; later writes of those members in place show through it, as through a
//! numpy view. Everything else (other chunks, str/bytes values, bool bitmaps, interned codes, validity)
//! is converted in one pass.
//!
//! **Import.** [`infer_members`] reads the type table backwards (a column holding nulls becomes
//! `Optional`); [`import_dynamic`] and [`import_keyed`] build a store from record batches, each column
//! matched to the member of its name and converted as a write converts a value. A column of an Arrow
//! type no member takes, a missing or extra column, or a null in a member that is not optional is an
//! error naming the column, and nothing is built.

mod export;
mod import;

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_data;
pub use arrow_schema;

pub use export::{ArrowKey, ExportPlan};
pub use import::{import_dynamic, import_keyed, infer_members, key_type_of};

use arrow_schema::{DataType, Field};

use crate::error::Error;
use crate::schema::{Dtype, MemberType};

/// An error of an Arrow conversion: the engine's, or the engine's about one column or member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// An error not about one column.
    #[error(transparent)]
    Store(#[from] Error),
    /// An error about one column (import) or member (export).
    #[error("{what} {name:?}: {error}")]
    Column {
        /// `"column"` (an Arrow column) or `"member"` (a store's member).
        what: &'static str,
        /// The column's or member's name.
        name: String,
        /// What went wrong.
        error: Error,
    },
}

impl ConvertError {
    /// The engine error inside (for mapping it to an exception type).
    #[must_use]
    pub fn error(&self) -> &Error {
        match self {
            ConvertError::Store(e) | ConvertError::Column { error: e, .. } => e,
        }
    }

    fn column(name: &str, error: Error) -> ConvertError {
        ConvertError::Column {
            what: "column",
            name: name.to_owned(),
            error,
        }
    }

    fn member(name: &str, error: Error) -> ConvertError {
        ConvertError::Column {
            what: "member",
            name: name.to_owned(),
            error,
        }
    }
}

/// The result of an Arrow conversion.
pub type ConvertResult<T> = std::result::Result<T, ConvertError>;

/// The Arrow type of a dtype.
#[must_use]
pub fn dtype_arrow(d: Dtype) -> DataType {
    match d {
        Dtype::Bool => DataType::Boolean,
        Dtype::I8 => DataType::Int8,
        Dtype::I16 => DataType::Int16,
        Dtype::I32 => DataType::Int32,
        Dtype::I64 => DataType::Int64,
        Dtype::U8 => DataType::UInt8,
        Dtype::U16 => DataType::UInt16,
        Dtype::U32 => DataType::UInt32,
        Dtype::U64 => DataType::UInt64,
        Dtype::F32 => DataType::Float32,
        Dtype::F64 => DataType::Float64,
    }
}

/// The dtype of an Arrow numeric or boolean type.
#[must_use]
pub fn arrow_dtype(t: &DataType) -> Option<Dtype> {
    Some(match t {
        DataType::Boolean => Dtype::Bool,
        DataType::Int8 => Dtype::I8,
        DataType::Int16 => Dtype::I16,
        DataType::Int32 => Dtype::I32,
        DataType::Int64 => Dtype::I64,
        DataType::UInt8 => Dtype::U8,
        DataType::UInt16 => Dtype::U16,
        DataType::UInt32 => Dtype::U32,
        DataType::UInt64 => Dtype::U64,
        DataType::Float32 => Dtype::F32,
        DataType::Float64 => Dtype::F64,
        _ => return None,
    })
}

/// The Arrow type a member type leaves as by default, and whether it is nullable; `None` for an object
/// member (it cannot leave).
#[must_use]
pub fn member_arrow(ty: &MemberType) -> Option<(DataType, bool)> {
    Some(match ty {
        MemberType::Scalar(d) => (dtype_arrow(*d), false),
        MemberType::Array(d, n) => (
            DataType::FixedSizeList(
                Field::new_list_field(dtype_arrow(*d), false).into(),
                i32::try_from(*n).ok()?,
            ),
            false,
        ),
        MemberType::Str => (DataType::LargeUtf8, false),
        MemberType::Bytes => (DataType::LargeBinary, false),
        MemberType::Interned(t) => (
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(member_arrow(t)?.0)),
            false,
        ),
        MemberType::Optional(t) => (member_arrow(t)?.0, true),
        MemberType::Object => return None,
    })
}

/// Whether `t` is one of Arrow's string types (`string`, `large_string`, `string_view`).
fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether `t` is one of Arrow's binary types (`binary`, `large_binary`, `binary_view`).
fn is_binary(t: &DataType) -> bool {
    matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Array;

    use super::*;
    use crate::{DynamicStore, KeyedStore, Member, Schema, StaticStore, Store, Value};

    fn schema() -> Arc<Schema> {
        Arc::new(
            Schema::new(vec![
                Member::new("x", MemberType::Scalar(Dtype::I64)).unwrap(),
                Member::new("name", MemberType::Str).unwrap(),
                Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
                Member::new("p", MemberType::optional(MemberType::Scalar(Dtype::F32))).unwrap(),
                Member::new("a", MemberType::Array(Dtype::Bool, 3)).unwrap(),
            ])
            .unwrap(),
        )
    }

    fn row(i: i64) -> Vec<(usize, Value)> {
        vec![
            (0, Value::Int(i)),
            (1, Value::from("y".repeat(i as usize * 7).as_str())),
            (2, Value::from(["r", "g"][i as usize % 2])),
            (
                3,
                if i % 2 == 0 {
                    Value::Null
                } else {
                    Value::Float(i as f64)
                },
            ),
            (
                4,
                Value::Array(vec![
                    Value::Bool(i % 2 == 0),
                    Value::Bool(true),
                    Value::Bool(false),
                ]),
            ),
        ]
    }

    #[test]
    fn a_shared_buffer_outlives_its_store() {
        let mut s = StaticStore::new(schema(), 64);
        for i in 0..40 {
            s.add(&row(i)).unwrap();
        }
        let plan = ExportPlan::new(s.schema(), None, None).unwrap();
        let batches = plan.export(&s).unwrap();
        let col = batches[0].column(0).as_primitive::<Int64Type>().clone();
        assert_eq!(col.values().as_ptr(), s.column_slice::<i64>(0).unwrap().as_ptr());
        s.set(3, 0, &Value::Int(99)).unwrap();
        assert_eq!(col.value(3), 99); // writes show through
        drop(s);
        drop(batches);
        let junk: Vec<Vec<i64>> = (0..64).map(|k| vec![k; 1 << 12]).collect();
        assert_eq!(col.value(39), 39);
        assert_eq!(col.value(3), 99);
        drop(junk);
    }

    #[test]
    fn round_trip_through_batches() {
        let mut d = DynamicStore::new(schema(), 3).unwrap();
        for i in 0..20 {
            d.add(&row(i)).unwrap();
        }
        d.remove(4).unwrap();
        let plan = ExportPlan::new(d.schema(), None, None).unwrap();
        let batches = plan.export(&d).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [7, 8, 4]
        );
        let inferred = infer_members(&plan.schema(), &batches, None).unwrap();
        assert_eq!(
            inferred[3].ty(),
            &MemberType::optional(MemberType::Scalar(Dtype::F32))
        );
        let back = import_dynamic(d.schema().clone(), 2, &plan.schema(), &batches).unwrap();
        let got: Vec<Vec<Value>> = back
            .indices()
            .map(|i| (0..5).map(|m| back.get(i, m).unwrap()).collect())
            .collect();
        let want: Vec<Vec<Value>> = d
            .indices()
            .map(|i| (0..5).map(|m| d.get(i, m).unwrap()).collect())
            .collect();
        assert_eq!(got, want);
        back.validate().unwrap();
    }

    #[test]
    fn keyed_round_trip_and_errors_name_the_column() {
        let mut k: KeyedStore<String> = KeyedStore::new(schema(), 2).unwrap();
        for i in 0..9 {
            k.insert(&format!("k{i}"), &row(i)).unwrap();
        }
        let plan = ExportPlan::new(k.schema(), Some(("id", String::arrow_type())), None).unwrap();
        let batches = plan.export_keyed(&k).unwrap();
        assert_eq!(batches[0].column(0).len(), 4);
        let back: KeyedStore<String> =
            import_keyed(k.schema().clone(), 4, &plan.schema(), &batches, "id").unwrap();
        assert_eq!(back.len(), 9);
        assert_eq!(back.get(back.index_of("k7").unwrap(), 0).unwrap(), Value::Int(7));
        back.validate().unwrap();
        // A member missing from the data: the error names it, nothing is built.
        let only = ExportPlan::new(k.schema(), Some(("id", String::arrow_type())), Some(&[0])).unwrap();
        let b = only.export_keyed(&k).unwrap();
        let e = import_keyed::<String>(k.schema().clone(), 4, &only.schema(), &b, "id").unwrap_err();
        assert!(e.to_string().contains("\"name\""), "{e}");
        // Nulls into a member that is not optional.
        let opt = ExportPlan::new(k.schema(), None, Some(&[3])).unwrap();
        let b = opt.export(k.store()).unwrap();
        let narrow =
            Arc::new(Schema::new(vec![Member::new("p", MemberType::Scalar(Dtype::F32)).unwrap()]).unwrap());
        let e = import_dynamic(narrow, 4, &opt.schema(), &b).unwrap_err();
        assert!(
            matches!(e, ConvertError::Column { .. }) && e.to_string().contains("null"),
            "{e}"
        );
    }

    #[test]
    fn object_members_refuse_to_leave() {
        let s = Arc::new(
            Schema::new(vec![
                Member::new("x", MemberType::Scalar(Dtype::I64)).unwrap(),
                Member::new("o", MemberType::Object).unwrap(),
            ])
            .unwrap(),
        );
        let e = ExportPlan::new(&s, None, None).unwrap_err();
        assert!(e.to_string().contains("\"o\""));
        assert!(ExportPlan::new(&s, None, Some(&[0])).is_ok());
    }
}

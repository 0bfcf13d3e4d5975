//! compactstore: many records stored compactly, each member in its own typed, contiguous column.
//!
//! A [`Schema`] names the members (numeric scalars and fixed arrays, str, bytes, interned, optional and
//! object members); a [`StaticStore`] holds a fixed number of slots; a [`DynamicStore`] chains static stores
//! of `2^k` slots as it grows, never moving data; a [`KeyedStore`] indexes a dynamic store by each entry's
//! own key (i64, u64, str or bytes). Static and dynamic stores implement [`Store`], whose
//! methods address slots by a global index and members by position ([`Schema::index_of`] maps names).
//! Typed access is `&[T]` per chunk ([`StaticStore::column_slice`]); [`Value`] is the untyped path, with
//! range checks on every write. Nothing panics on caller input: every fallible call returns [`Error`].
//!
//! ```
//! use std::sync::Arc;
//! use compactstore::{DynamicStore, Dtype, Member, MemberType, Schema, Store, Value};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Member::new("ref", MemberType::Scalar(Dtype::I64))?,
//!     Member::new("fitness", MemberType::Scalar(Dtype::F32))?,
//!     Member::new("inputs", MemberType::Array(Dtype::U8, 8))?,
//! ])?);
//! let mut genes = DynamicStore::new(schema, 11)?;
//! let i = genes.add(&[(0, Value::Int(42)), (1, Value::Float(0.5))])?;
//! assert_eq!(genes.get(i, 0)?, Value::Int(42));
//! assert!(genes.set(i, 2, &Value::Int(1)).is_err());           // an array member takes an array
//! let total: f32 = genes.chunks().iter().map(|c| c.column_slice::<f32>(1).unwrap().iter().sum::<f32>()).sum();
//! assert_eq!(total, 0.5);
//! # Ok::<(), compactstore::Error>(())
//! ```

mod alloc;
#[cfg(feature = "arrow")]
pub mod arrow;
pub mod column;
mod dynamic_store;
mod error;
pub mod interrupt;
mod keyed_store;
mod schema;
pub mod slot;
mod static_store;
mod store;
mod value;

pub use dynamic_store::{DynamicStore, DEFAULT_LOG2SIZE, MAX_LOG2SIZE};
pub use error::{Error, Result};
pub use keyed_store::{Key, KeyedStore, DEFAULT_COMPACT_MIN, DEFAULT_KEYED_LOG2SIZE, MAX_KEYED_LEN};
pub use schema::{Dtype, Member, MemberType, ParseMemberTypeError, Schema, MAX_ARRAY_LEN};
pub use static_store::{ExportedBuffer, StaticStore};
pub use store::{normalize_index, Store};
pub use value::{Element, ObjectRef, Scalar, Value};

// The Rust example of the docs' engine page runs as a doctest.
#[doc = include_str!("../../../docs/guide/rust.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

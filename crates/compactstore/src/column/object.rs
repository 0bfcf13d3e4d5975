//! `ObjectColumn`: one optional, shared object reference per slot (the Python bindings' `cs.Object`).
//!
//! Not compact (a pointer pair per slot, and the objects live elsewhere) and not fork-friendly (reading a
//! Python object writes its reference count): an opt-in for what fits no other member type.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::value::{ObjectRef, Value};

/// A column of `Option<ObjectRef>`; `None` reads as [`Value::Null`].
#[derive(Debug, Clone)]
pub struct ObjectColumn {
    slots: Vec<Option<ObjectRef>>,
}

impl ObjectColumn {
    /// `size` empty slots.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the slots cannot be allocated.
    pub fn try_new(size: usize) -> Result<ObjectColumn> {
        Ok(ObjectColumn {
            slots: crate::alloc::filled(size, None, "an object member's slots")?,
        })
    }

    /// A copy sharing the objects (each slot's reference cloned). O(size).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the slots cannot be allocated.
    pub fn try_clone(&self) -> Result<ObjectColumn> {
        Ok(ObjectColumn {
            slots: crate::alloc::clone_vec(&self.slots, "an object member's slots")?,
        })
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    fn out_of_range(&self, slot: usize) -> Error {
        Error::IndexOutOfRange {
            index: slot as i64,
            len: self.slots.len(),
        }
    }

    /// The object at `slot`, or `Value::Null`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        match self.slots.get(slot).ok_or_else(|| self.out_of_range(slot))? {
            Some(o) => Ok(Value::Object(o.clone())),
            None => Ok(Value::Null),
        }
    }

    /// Store `v` (`Value::Object` or `Value::Null`) at `slot`, dropping the reference held before.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::WrongType`] for any other value.
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        let new = match v {
            Value::Object(o) => Some(o.clone()),
            Value::Null => None,
            other => {
                return Err(Error::WrongType {
                    expected: "object".into(),
                    got: other.kind().into(),
                });
            }
        };
        let len = self.slots.len();
        let s = match self.slots.get_mut(slot) {
            Some(x) => Ok(x),
            None => Err(Error::IndexOutOfRange {
                index: slot as i64,
                len,
            }),
        }?;
        *s = new;
        Ok(())
    }

    /// Drop the reference at `slot`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn reset_slot(&mut self, slot: usize) -> Result<()> {
        self.set(slot, &Value::Null)
    }

    /// Drop every reference.
    pub fn reset_all(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }

    /// Take every reference out, leaving the slots empty (the caller decides when they drop).
    pub fn take_all(&mut self) -> Vec<ObjectRef> {
        self.slots.iter_mut().filter_map(Option::take).collect()
    }

    /// Every object held, with its slot (for a garbage collector's traversal).
    pub fn objects(&self) -> impl Iterator<Item = (usize, &ObjectRef)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|o| (i, o)))
    }

    /// Bytes held by the slots (the objects themselves are not counted).
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Option<ObjectRef>>()
    }
}

/// Wrap any shareable value as an object reference.
pub fn object_ref<T: std::any::Any + Send + Sync>(value: T) -> ObjectRef {
    ObjectRef(Arc::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_drops_and_refuses_other_values() {
        let mut c = ObjectColumn::try_new(3).unwrap();
        let o = object_ref(String::from("x"));
        c.set(1, &Value::Object(o.clone())).unwrap();
        assert_eq!(Arc::strong_count(&o.0), 2);
        assert_eq!(c.get(1).unwrap(), Value::Object(o.clone()));
        assert_eq!(c.get(0).unwrap(), Value::Null);
        assert!(c.set(0, &Value::Int(1)).is_err());
        assert_eq!(c.objects().count(), 1);
        c.reset_slot(1).unwrap();
        assert_eq!(Arc::strong_count(&o.0), 1);
        assert!(c.get(3).is_err());
    }
}

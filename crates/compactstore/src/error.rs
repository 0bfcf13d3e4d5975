//! The one error type of the engine.

/// Everything that can go wrong when a caller drives a store.
///
/// Each variant says what the caller did and carries the data needed to explain it. The Python bindings map
/// every variant to one Python exception in a single exhaustive `match`, so adding a variant is a compile
/// error there until it is mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A member name that the schema does not define.
    #[error("unknown member {name:?}")]
    UnknownMember {
        /// The name asked for.
        name: String,
    },
    /// A slot index (or member index) outside `0..len`.
    #[error("index {index} out of range for size {len}")]
    IndexOutOfRange {
        /// The index asked for.
        index: i64,
        /// The number of valid indices.
        len: usize,
    },
    /// The slot holds no entry (deleting or viewing a free slot).
    #[error("slot {index} holds no entry")]
    SlotFree {
        /// The free slot.
        index: usize,
    },
    /// An entry view whose slot was freed (and maybe reused) since the view was made.
    #[error("entry at slot {index} was deleted")]
    StaleEntry {
        /// The slot the view pointed at.
        index: usize,
    },
    /// `next_index` on a static store with no free slot.
    #[error("store is full ({size} slots)")]
    StoreFull {
        /// The store's fixed size.
        size: usize,
    },
    /// A value that does not fit the member's type (300 into u8, 1e39 into f32).
    #[error("{value} out of range for {dtype}")]
    ValueOutOfRange {
        /// The value, as text.
        value: String,
        /// The member type it was written to.
        dtype: String,
    },
    /// A value of the wrong kind for the member (a float into an int member, text into a number).
    #[error("expected {expected}, got {got}")]
    WrongType {
        /// What the member takes.
        expected: String,
        /// What it was given.
        got: String,
    },
    /// An array or sequence of the wrong length.
    #[error("expected length {expected}, got {got}")]
    WrongLength {
        /// The length required.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A write to a read-only member after its entry was created.
    #[error("member {name:?} is read-only")]
    ReadOnly {
        /// The member's name.
        name: String,
    },
    /// Memory for a buffer could not be allocated (the allocator refused, or the request is beyond what
    /// any allocation can hold). The call changed nothing; the store is as before and still usable.
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// The bytes asked for (`usize::MAX` when the size itself overflowed).
        bytes: usize,
        /// What the memory was for ("a chunk's str/bytes data", "a column", ...).
        what: &'static str,
    },
    /// The same key given twice to a bulk load (`KeyedStore::from_columns`): keys must be unique, as a
    /// dict built from them would silently keep only the last.
    #[error("duplicate key {key} at positions {first} and {second}")]
    DuplicateKey {
        /// The key, as text (`Debug` form: `"a"` for a string key, `7` for an integer).
        key: String,
        /// The position of its first occurrence.
        first: usize,
        /// The position of the repeat.
        second: usize,
    },
    /// Allocating, freeing or resetting slots of a chunk of a dynamic store: only the dynamic store
    /// itself may, since it counts the entries of all its chunks ([`crate::DynamicStore::chunk_mut`]).
    #[error("a chunk of a dynamic store cannot allocate or free slots: use the dynamic store")]
    ChunkAllocation,
    /// A size, chunk size or other construction argument the engine cannot honour.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The caller's check asked a long call to stop (see [`crate::interrupt`]); nothing was changed.
    #[error("interrupted")]
    Interrupted,
    /// A write, allocation, delete or reset of a store whose memory is a read-only backing (a file mapped
    /// with mode `"r"`; with `"r+"` only in-place writes of fixed-width members are allowed). Nothing was
    /// changed.
    #[error("the store is read-only ({0})")]
    StoreReadOnly(String),
    /// A file (or buffer) that is not a valid store: wrong magic, unsupported version, truncated, a
    /// checksum or bounds check that failed.
    #[error("not a valid store file: {0}")]
    Format(String),
    /// `validate()` found a broken internal invariant.
    #[error("invariant broken: {0}")]
    Invariant(String),
}

impl Error {
    /// This error, met while checking member `name`'s invariants, as `validate` reports it: an
    /// [`Error::Invariant`] naming the member; [`Error::Interrupted`] stays itself.
    pub(crate) fn in_member_check(self, name: &str) -> Error {
        match self {
            Error::Interrupted => Error::Interrupted,
            e => Error::Invariant(format!("member {name:?}: {e}")),
        }
    }

    /// [`Error::OutOfMemory`] for `bytes` bytes of `what`.
    #[must_use]
    pub fn out_of_memory(bytes: usize, what: &'static str) -> Error {
        Error::OutOfMemory { bytes, what }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

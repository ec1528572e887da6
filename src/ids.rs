//! Ids of the archive's tables and volumes, each its own type, so that an entry id is never taken for a
//! content id or a volume number for a frame id. The bottom of the crate: this module imports nothing
//! from it, and `format` and `error` both use it.
//!
//! The numbers are positions in the index's tables (docs/FORMAT.md section 4), except [`VolumeNo`], which
//! is 1-based as in the volume names (`NAME.001` is volume 1).

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident($int:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $int);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// An entry (file, directory, link, …): its position in the index's entry table.
    EntryId(u64)
);
id!(
    /// A file content (the bytes of one or more files): its position in the content table.
    ContentId(u64)
);
id!(
    /// A chunk (a byte range of one frame): its position in the chunk table.
    ChunkId(u64)
);
id!(
    /// A frame (a separately compressed block): its position in the frame table.
    FrameId(u32)
);
id!(
    /// A data volume's number, 1-based: volume 1 is `NAME.001`.
    VolumeNo(u32)
);

impl EntryId {
    /// The id as a table position.
    pub fn at(self) -> usize {
        self.0 as usize
    }
}

impl ContentId {
    /// The id as a table position.
    pub fn at(self) -> usize {
        self.0 as usize
    }
}

impl ChunkId {
    /// The id as a table position.
    pub fn at(self) -> usize {
        self.0 as usize
    }
}

impl FrameId {
    /// The id as a table position.
    pub fn at(self) -> usize {
        self.0 as usize
    }
}

impl VolumeNo {
    /// The position of this volume in a list of volumes ordered by number (volume 1 at 0).
    pub fn at(self) -> usize {
        (self.0 as usize).saturating_sub(1)
    }
}

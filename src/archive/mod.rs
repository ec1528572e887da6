//! The archive layer: clc's own format read and written through `format`'s structures.
//!
//! * [`reader`]: [`Archive`] opens an archive (footer → index → volumes, or a CL_Compressor archive
//!   through `legacy`) and reads frames and file bytes through its validated index.
//! * [`writer`]: [`VolumeWriter`] writes frames into volumes in order, then the index and the footer.
//!
//! Volume names and listings come from `volumes`; decoded frames are held by `cache`.

pub mod generations;
pub mod reader;
pub mod writer;

pub use generations::{History, Snapshot};
pub use reader::{Archive, Kind, Pick};
pub use writer::VolumeWriter;

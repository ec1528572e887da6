//! Thin, safe wrappers over the few `opencl3` calls the backend uses. All `unsafe` of the GPU backend
//! lives here: each call passes buffers that this module created with the right size, and reads or
//! writes host slices that stay borrowed until the queue is finished (every caller ends with
//! [`Queue::finish`] before its slices go out of scope).

use opencl3::command_queue::{CommandQueue, CL_QUEUE_PROFILING_ENABLE};
use opencl3::context::Context;
use opencl3::error_codes::ClError;
use opencl3::event::Event;
use opencl3::kernel::{ExecuteKernel, Kernel};
use opencl3::memory::{
    Buffer, ClMem, CL_MAP_READ, CL_MAP_WRITE, CL_MEM_ALLOC_HOST_PTR, CL_MEM_READ_WRITE,
};
use opencl3::types::cl_mem;
use opencl3::types::{cl_device_id, CL_BLOCKING, CL_NON_BLOCKING};
use std::ptr;

use crate::error::{Error, Result};

/// Turns an OpenCL error into `Error::Gpu` naming what was being done.
pub(crate) fn cl_err(what: &str, e: ClError) -> Error {
    Error::Gpu(format!("{what}: {e} ({})", e.0))
}

/// `.cl("what")?` on any opencl3 result.
pub(crate) trait ClContext<T> {
    fn cl(self, what: &str) -> Result<T>;
}

impl<T> ClContext<T> for std::result::Result<T, ClError> {
    fn cl(self, what: &str) -> Result<T> {
        self.map_err(|e| cl_err(what, e))
    }
}

/// A device buffer of `len` elements of `T` (at least one element: OpenCL refuses empty buffers).
pub(crate) struct DevBuf<T> {
    buf: Buffer<T>,
    len: usize,
}

impl<T> DevBuf<T> {
    pub fn new(ctx: &Context, len: usize, what: &str) -> Result<Self> {
        // SAFETY: no host pointer is passed; the size is computed by opencl3 from `len`.
        let buf =
            unsafe { Buffer::<T>::create(ctx, CL_MEM_READ_WRITE, len.max(1), ptr::null_mut()) }
                .cl(what)?;
        Ok(DevBuf { buf, len })
    }
}

impl<T> DevBuf<T> {
    /// Elements it holds.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// Host memory the driver has pinned: a buffer made with `CL_MEM_ALLOC_HOST_PTR` and mapped once.
/// Transfers between it and device buffers run at the bus's speed, where pageable memory goes through
/// the driver's own staging (about 1.2 GB/s device-to-host on the H200 machine against tens of GB/s).
/// It stays mapped for its life; the driver frees it with the buffer.
pub(crate) struct Pinned {
    _buf: Buffer<u8>,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is ordinary host memory owned by this value; it is only reached through
// `&self`/`&mut self`, so Rust's borrow rules keep its uses apart.
unsafe impl Send for Pinned {}

impl Pinned {
    pub fn new(ctx: &Context, q: &Queue, len: usize) -> Result<Self> {
        let len = len.max(1);
        // SAFETY: no host pointer is passed; the driver allocates `len` bytes.
        let buf = unsafe {
            Buffer::<u8>::create(
                ctx,
                CL_MEM_ALLOC_HOST_PTR | CL_MEM_READ_WRITE,
                len,
                ptr::null_mut(),
            )
        }
        .cl("allocating pinned host memory")?;
        let mut p: cl_mem = ptr::null_mut();
        // SAFETY: a blocking map of the whole buffer; `p` receives the host address of `len` bytes.
        unsafe {
            q.q.enqueue_map_buffer(
                &buf,
                CL_BLOCKING,
                CL_MAP_READ | CL_MAP_WRITE,
                0,
                len,
                &mut p,
                &[],
            )
        }
        .cl("mapping pinned host memory")?;
        if p.is_null() {
            return Err(Error::Gpu(
                "mapping pinned host memory gave no address".into(),
            ));
        }
        Ok(Pinned {
            _buf: buf,
            ptr: p as *mut u8,
            len,
        })
    }

    /// Replaces `self` with pinned memory a quarter larger than `need` unless it holds `need` already.
    pub fn fit(&mut self, ctx: &Context, q: &Queue, need: usize) -> Result<()> {
        if self.len < need {
            *self = Pinned::new(ctx, q, need + need / 4)?;
        }
        Ok(())
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` bytes for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// An in-order queue with profiling on (the bench reads kernel times from its events).
pub(crate) struct Queue {
    q: CommandQueue,
}

impl Queue {
    pub fn new(ctx: &Context, dev: cl_device_id) -> Result<Self> {
        // SAFETY: `dev` belongs to `ctx` (the context was created from it).
        let q =
            unsafe { CommandQueue::create_with_properties(ctx, dev, CL_QUEUE_PROFILING_ENABLE, 0) };
        let q = match q {
            Ok(q) => q,
            // OpenCL 1.x platforms lack clCreateCommandQueueWithProperties.
            // SAFETY: as above.
            #[allow(deprecated)]
            Err(_) => unsafe { CommandQueue::create(ctx, dev, CL_QUEUE_PROFILING_ENABLE) }
                .cl("creating a command queue")?,
        };
        Ok(Queue { q })
    }

    /// Copies `data` into `buf` at element `at`. Non-blocking: `data` must outlive [`Queue::finish`].
    pub fn write<T>(&self, buf: &mut DevBuf<T>, at: usize, data: &[T]) -> Result<Event> {
        if at + data.len() > buf.len {
            return Err(Error::Gpu("write past a device buffer".into()));
        }
        let off = at * std::mem::size_of::<T>();
        // SAFETY: bounds checked above; the caller keeps `data` alive until finish().
        unsafe {
            self.q
                .enqueue_write_buffer(&mut buf.buf, CL_NON_BLOCKING, off, data, &[])
        }
        .cl("uploading")
    }

    /// Copies `data` into `buf` at element `at` and waits for it (for small host tables that do not
    /// outlive the call).
    pub fn write_now<T>(&self, buf: &mut DevBuf<T>, at: usize, data: &[T]) -> Result<Event> {
        if at + data.len() > buf.len {
            return Err(Error::Gpu("write past a device buffer".into()));
        }
        let off = at * std::mem::size_of::<T>();
        // SAFETY: bounds checked above; a blocking write is done with `data` when it returns.
        unsafe {
            self.q
                .enqueue_write_buffer(&mut buf.buf, CL_BLOCKING, off, data, &[])
        }
        .cl("uploading")
    }

    /// Copies elements `at..at + out.len()` of `buf` into `out`. Non-blocking like [`Queue::write`].
    pub fn read<T>(&self, buf: &DevBuf<T>, at: usize, out: &mut [T]) -> Result<Event> {
        if at + out.len() > buf.len {
            return Err(Error::Gpu("read past a device buffer".into()));
        }
        let off = at * std::mem::size_of::<T>();
        // SAFETY: bounds checked above; the caller keeps `out` alive and untouched until finish().
        unsafe {
            self.q
                .enqueue_read_buffer(&buf.buf, CL_NON_BLOCKING, off, out, &[])
        }
        .cl("downloading")
    }

    /// Copies elements `at..at + out.len()` of `buf` into `out` and waits for it.
    pub fn read_now<T>(&self, buf: &DevBuf<T>, at: usize, out: &mut [T]) -> Result<Event> {
        if at + out.len() > buf.len {
            return Err(Error::Gpu("read past a device buffer".into()));
        }
        let off = at * std::mem::size_of::<T>();
        // SAFETY: bounds checked above; a blocking read is done with `out` when it returns.
        unsafe {
            self.q
                .enqueue_read_buffer(&buf.buf, CL_BLOCKING, off, out, &[])
        }
        .cl("downloading")
    }

    /// Sets every element of `buf` to `value`.
    pub fn fill<T>(&self, buf: &mut DevBuf<T>, value: T) -> Result<Event> {
        let size = buf.len.max(1) * std::mem::size_of::<T>();
        // SAFETY: the pattern is one `T` and the size is the buffer's own.
        unsafe {
            self.q
                .enqueue_fill_buffer(&mut buf.buf, &[value], 0, size, &[])
        }
        .cl("clearing")
    }

    /// Sets the first `n` elements of `buf` (at least one, at most all) to `value`.
    pub fn fill_n<T>(&self, buf: &mut DevBuf<T>, value: T, n: usize) -> Result<Event> {
        let size = n.clamp(1, buf.len.max(1)) * std::mem::size_of::<T>();
        // SAFETY: the pattern is one `T` and the size is within the buffer's own.
        unsafe {
            self.q
                .enqueue_fill_buffer(&mut buf.buf, &[value], 0, size, &[])
        }
        .cl("clearing")
    }

    /// Runs `kernel` over `global` work-items in groups of `local` (None: the driver chooses).
    pub fn launch(
        &self,
        kernel: &Kernel,
        args: &[&dyn Arg],
        global: usize,
        local: Option<usize>,
    ) -> Result<Event> {
        let mut ek = ExecuteKernel::new(kernel);
        for a in args {
            a.set(&mut ek);
        }
        ek.set_global_work_size(global);
        if let Some(l) = local {
            ek.set_local_work_size(l);
        }
        // SAFETY: the argument list matches the kernel's signature (checked by the tests of each kernel).
        unsafe { ek.enqueue_nd_range(&self.q) }.cl("launching a kernel")
    }

    pub fn finish(&self) -> Result<()> {
        self.q.finish().cl("waiting for the device")
    }
}

/// A kernel argument: a device buffer or a scalar.
pub(crate) trait Arg {
    fn set(&self, ek: &mut ExecuteKernel<'_>);
}

impl<T> Arg for DevBuf<T> {
    fn set(&self, ek: &mut ExecuteKernel<'_>) {
        // SAFETY: a cl_mem handle, the type every buffer argument of the kernels has.
        unsafe { ek.set_arg(&self.buf.get()) };
    }
}

impl Arg for u32 {
    fn set(&self, ek: &mut ExecuteKernel<'_>) {
        // SAFETY: a 4-byte scalar for a `uint` parameter.
        unsafe { ek.set_arg(self) };
    }
}

/// Nanoseconds an event's command ran (0 when profiling data is not available).
pub(crate) fn event_span(first: &Event, last: &Event) -> u64 {
    match (
        first.profiling_command_start(),
        last.profiling_command_end(),
    ) {
        (Ok(a), Ok(b)) if b >= a => b - a,
        _ => 0,
    }
}

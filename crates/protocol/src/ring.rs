//! The response ring: shared memory a daemon connection's large response blocks travel in,
//! instead of through the socket (one copy into shared memory, against a copy into the socket
//! and one out of it).
//!
//! The daemon creates one per connection, on the connection's first large block: a memfd of
//! [`RING_HEADER`] + [`RING_DATA`] bytes, sealed against shrinking and growing, sent with a
//! `RingSetup` frame (`SCM_RIGHTS`). Each block then goes as a `BodyRing { offset, len }`
//! frame naming bytes of the data area (which start [`RING_HEADER`] bytes into the file), in
//! order, each slice starting where the previous one ended (wrapping to 0 at the end).
//!
//! The module passes a slice on and then releases it: it adds the slice's length to the
//! `released` counter (a `u32` at [`RELEASED_AT`] of the header, wrapping) and, when the
//! daemon has set the `waiting` word ([`WAITING_AT`]), wakes it (a shared futex on
//! `released`). The daemon writes into the ring only where the module has released: with
//! `written` its own wrapping count of bytes put in, `RING_DATA - (written - released)` bytes
//! are free. A daemon that finds no room for a while sends the block through the socket
//! instead, so nothing ever waits on the ring for long.
//!
//! The module trusts nothing about the ring but its size: the memfd's seals must forbid
//! shrinking and growing (so a mapping never faults), every slice is bounds-checked, and the
//! bytes are passed on by address, never parsed.

/// Bytes before the data area: the `released` and `waiting` words, padded to a page.
pub const RING_HEADER: usize = 4096;
/// Bytes of the data area.
pub const RING_DATA: usize = 256 << 10;
/// Offset in the header of `released` (a `u32`: bytes the module has released, wrapping).
pub const RELEASED_AT: usize = 0;
/// Offset in the header of `waiting` (a `u32`: non-zero while the daemon waits for room).
pub const WAITING_AT: usize = 4;
/// Most bytes of one `BodyRing` slice: the module passes each on as it comes, so the daemon
/// fills one part of the ring while the module sends another.
pub const RING_SLICE: usize = 128 << 10;
/// Blocks of at least this many bytes go through the ring; smaller ones are cheaper to copy
/// into the socket.
pub const RING_MIN_BLOCK: usize = 32 << 10;

const _: () = assert!(RING_DATA.is_multiple_of(RING_SLICE) && RING_DATA < (u32::MAX / 2) as usize);

/// Whether a slice of `len` bytes at `offset` lies inside the data area (and is not empty).
pub fn slice_in_bounds(offset: u32, len: u32) -> bool {
    len > 0 && (offset as usize).saturating_add(len as usize) <= RING_DATA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_must_be_non_empty_and_end_inside_the_data_area() {
        assert!(slice_in_bounds(0, 1));
        assert!(slice_in_bounds(0, RING_DATA as u32));
        assert!(slice_in_bounds(RING_DATA as u32 - 1, 1));
        assert!(!slice_in_bounds(0, 0));
        assert!(!slice_in_bounds(RING_DATA as u32, 1));
        assert!(!slice_in_bounds(1, RING_DATA as u32));
        assert!(!slice_in_bounds(u32::MAX, u32::MAX));
    }
}

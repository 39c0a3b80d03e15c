//! The fast path for byte values.
//!
//! serde serializes `Vec<u8>` as a sequence of integers, one call per byte,
//! which is both large on disk and slow (a 32 MiB value took seconds to
//! decode unoptimized). Byte values are instead written as one MessagePack
//! `bin` with bulk copies and read straight into their final buffer.
//!
//! Detecting "this `T` is `Vec<u8>`" needs a `TypeId` without a `'static`
//! bound (so the store's bounds stay serde's), which `typeid` provides.

use std::mem::ManuallyDrop;

use serde_bytes::ByteBuf;

/// The byte representation of `value`, if `T` is a plain byte container.
pub(crate) fn as_bytes<T: ?Sized>(value: &T) -> Option<&[u8]> {
    let id = typeid::of::<T>();
    if id == typeid::of::<Vec<u8>>() {
        // SAFETY: `T` is `Vec<u8>`, so the pointer cast is an identity.
        Some(unsafe { &*(value as *const T).cast::<Vec<u8>>() })
    } else if id == typeid::of::<ByteBuf>() {
        // SAFETY: `T` is `ByteBuf`, as above.
        Some(unsafe { &*(value as *const T).cast::<ByteBuf>() })
    } else if id == typeid::of::<[u8]>() {
        // SAFETY: `T` is `[u8]`; `&T` and `&[u8]` are the same fat pointer.
        Some(unsafe { std::mem::transmute_copy::<&T, &[u8]>(&value) })
    } else if id == typeid::of::<Box<[u8]>>() {
        // SAFETY: `T` is `Box<[u8]>`, as above.
        Some(unsafe { &*(value as *const T).cast::<Box<[u8]>>() })
    } else {
        None
    }
}

/// Whether values of `T` can be built by [`from_vec`].
pub(crate) fn is_byte_type<T>() -> bool {
    let id = typeid::of::<T>();
    id == typeid::of::<Vec<u8>>()
        || id == typeid::of::<ByteBuf>()
        || id == typeid::of::<Box<[u8]>>()
}

/// Turns the bytes into a `T`. Only called when [`is_byte_type::<T>`] holds.
pub(crate) fn from_vec<T>(bytes: Vec<u8>) -> Option<T> {
    let id = typeid::of::<T>();
    if id == typeid::of::<Vec<u8>>() {
        Some(cast(bytes))
    } else if id == typeid::of::<ByteBuf>() {
        Some(cast(ByteBuf::from(bytes)))
    } else if id == typeid::of::<Box<[u8]>>() {
        Some(cast(bytes.into_boxed_slice()))
    } else {
        None
    }
}

/// Moves `value` into a `T` of the same type. Callers check the `TypeId`s.
fn cast<U, T>(value: U) -> T {
    // `assert!` rather than `assert_eq!`: this is instantiated for every
    // value type of every build script, unoptimized, and needs no message.
    assert!(typeid::of::<U>() == typeid::of::<T>());
    let value = ManuallyDrop::new(value);
    // SAFETY: `U` and `T` are the same type (asserted above), and the source
    // is never dropped, so ownership moves exactly once.
    unsafe { std::ptr::read((&*value as *const U).cast::<T>()) }
}

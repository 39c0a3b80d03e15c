//! The fast paths for byte and text values.
//!
//! serde serializes `Vec<u8>` as a sequence of integers, one call per byte,
//! which is both large on disk and slow (a 32 MiB value took seconds to
//! decode unoptimized), and decodes a `String` through a borrowed `str`
//! and a copy. Byte values are instead written as one MessagePack `bin`
//! and text as one `str`, with bulk copies, and read straight into their
//! final buffer; text is checked by std's (precompiled) UTF-8 validation.
//!
//! Detecting "this `T` is `Vec<u8>`" needs a `TypeId` without a `'static`
//! bound (so the store's bounds stay serde's), which `typeid` provides.

use std::mem::ManuallyDrop;

use serde_bytes::ByteBuf;

/// A value stored as a single MessagePack `bin` or `str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Single {
    Bytes,
    Text,
}

/// The bytes of `value`, if `T` is a plain byte container or text.
pub(crate) fn as_single<T: ?Sized>(value: &T) -> Option<(Single, &[u8])> {
    let id = typeid::of::<T>();
    // SAFETY (every arm): `T` is the type named in the condition, so the
    // pointer cast is an identity (for unsized `[u8]` and `str`, `&T` and the
    // target reference are the same fat pointer).
    let single: (Single, &[u8]) = if id == typeid::of::<Vec<u8>>() {
        (Single::Bytes, unsafe {
            &**(value as *const T).cast::<Vec<u8>>()
        })
    } else if id == typeid::of::<ByteBuf>() {
        (Single::Bytes, unsafe {
            &**(value as *const T).cast::<ByteBuf>()
        })
    } else if id == typeid::of::<[u8]>() {
        (Single::Bytes, unsafe {
            std::mem::transmute_copy::<&T, &[u8]>(&value)
        })
    } else if id == typeid::of::<Box<[u8]>>() {
        (Single::Bytes, unsafe {
            &**(value as *const T).cast::<Box<[u8]>>()
        })
    } else if id == typeid::of::<String>() {
        (Single::Text, unsafe {
            (*(value as *const T).cast::<String>()).as_bytes()
        })
    } else if id == typeid::of::<str>() {
        (Single::Text, unsafe {
            std::mem::transmute_copy::<&T, &str>(&value).as_bytes()
        })
    } else {
        return None;
    };
    Some(single)
}

/// Whether values of `T` can be built by [`from_vec`] (bytes) or
/// [`from_string`] (text).
pub(crate) fn single_kind<T>() -> Option<Single> {
    let id = typeid::of::<T>();
    if id == typeid::of::<Vec<u8>>()
        || id == typeid::of::<ByteBuf>()
        || id == typeid::of::<Box<[u8]>>()
    {
        Some(Single::Bytes)
    } else if id == typeid::of::<String>() {
        Some(Single::Text)
    } else {
        None
    }
}

/// Turns the bytes into a `T`, when [`single_kind::<T>`] is `Bytes`.
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

/// Turns the text into a `T`, when [`single_kind::<T>`] is `Text`.
pub(crate) fn from_string<T>(text: String) -> Option<T> {
    (typeid::of::<T>() == typeid::of::<String>()).then(|| cast(text))
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

//! Apache Spark-compatible Murmur3 hashing.
//!
//! Spark uses one hash function for two very different jobs, and minispark has
//! to reproduce it bit for bit for both:
//!
//! 1. **Shuffle partitioning.** `HashPartitioning(keys, n)` sends a row to
//!    partition `pmod(murmur3(keys), n)`. Matching Spark here is what makes a
//!    minispark shuffle co-partition data exactly like Spark does (bucketed
//!    tables, partition-wise joins, identical output ordering when debugging
//!    against a Spark cluster). This runs on every row of every shuffle, so the
//!    implementation is vectorised over Arrow arrays: see [`update_hashes`],
//!    [`spark_hash_columns`] and [`partition_ids`].
//! 2. **The SQL function `hash(expr, ...)`**, Catalyst's `Murmur3Hash`
//!    expression, returning an `INT`: see [`spark_hash_udf`].
//!
//! # The algorithm
//!
//! Spark's hash is `org.apache.spark.unsafe.hash.Murmur3_x86_32`, the 32-bit x86
//! flavour of Austin Appleby's MurmurHash3, with one twist described in
//! [`hash_bytes`]. Catalyst's `Murmur3Hash(children, seed = 42)` then folds the
//! columns of a row into a single value:
//!
//! ```text
//! hash = 42
//! for each column c, in order:
//!     if row.c is not NULL:  hash = murmur3(row.c, seed = hash)
//! ```
//!
//! * **Why seed 42?** It is simply the constant Spark chose
//!   (`Murmur3Hash(children: Seq[Expression]) = this(children, 42)`). Any seed
//!   works for hashing; matching Spark's output requires the same one.
//! * **Why chaining?** Using the previous column's hash as the next seed mixes
//!   all columns without allocating a combined key, and makes the result
//!   order-sensitive (`hash(a, b) != hash(b, a)`).
//! * **Why NULL leaves the hash unchanged:** a NULL contributes nothing, so
//!   `hash(NULL) = 42` and `hash(x, NULL) = hash(x)`.
//!
//! Each value is hashed according to its Spark type (see [`update_hashes`] for
//! the Arrow mapping): integers up to 32 bits as one 4-byte block
//! ([`hash_int`]), 64-bit values as two blocks ([`hash_long`]), strings and
//! binaries as their bytes ([`hash_bytes`]), and nested values (arrays, structs,
//! maps) by chaining over their elements exactly like the columns of a row.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryViewArray, FixedSizeBinaryArray, Int32Array, StringViewArray,
    new_empty_array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::compute::{CastOptions, cast_with_options, take};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type,
    Decimal128Type, Decimal256Type, DurationMicrosecondType, DurationMillisecondType,
    DurationNanosecondType, DurationSecondType, Field, FieldRef, Fields, Float32Type, Float64Type,
    Int8Type, Int16Type, Int32Type, Int64Type, Time64MicrosecondType, Time64NanosecondType,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type, i256,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, not_impl_err, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::registry::FunctionRegistry;
use datafusion::logical_expr::scalar_doc_sections::DOC_SECTION_HASHING;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// The seed Spark's `Murmur3Hash` expression (and therefore `HashPartitioning`)
/// starts from. It is an arbitrary constant; it matters only because Spark uses it.
pub const SPARK_HASH_SEED: u32 = 42;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Scrambles one 4-byte block before it is folded into the state.
#[inline(always)]
fn mix_k1(k1: u32) -> u32 {
    k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// Folds a scrambled block into the running state `h1`.
#[inline(always)]
fn mix_h1(h1: u32, k1: u32) -> u32 {
    (h1 ^ k1)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Final avalanche: mixes in the input length and spreads every bit over the
/// whole word. (Java's `>>>` is the unsigned shift `>>` on `u32`.)
#[inline(always)]
fn fmix(mut h1: u32, len: u32) -> u32 {
    h1 ^= len;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^= h1 >> 16;
    h1
}

/// Spark's `Murmur3_x86_32.hashInt`: one 4-byte block, length 4.
///
/// Used for `BOOLEAN` (as 1/0), `TINYINT`, `SMALLINT`, `INT`, `DATE` and `FLOAT`
/// (via its bits). Results are `u32`; Spark reports the same bits as a signed
/// `int` (`hash_int(x, s) as i32`).
#[inline]
pub fn hash_int(i: i32, seed: u32) -> u32 {
    fmix(mix_h1(seed, mix_k1(i as u32)), 4)
}

/// Spark's `Murmur3_x86_32.hashLong`: the low 32 bits then the high 32 bits as
/// two blocks, length 8. Used for `BIGINT`, `TIMESTAMP`, `DOUBLE` (via its bits)
/// and decimals of precision <= 18 (via their unscaled value).
#[inline]
pub fn hash_long(l: i64, seed: u32) -> u32 {
    let low = l as u32;
    let high = (l as u64 >> 32) as u32;
    let h1 = mix_h1(seed, mix_k1(low));
    let h1 = mix_h1(h1, mix_k1(high));
    fmix(h1, 8)
}

/// Spark's `Murmur3_x86_32.hashUnsafeBytes`, used for strings (their UTF-8
/// bytes), binaries and large decimals.
///
/// The 4-byte-aligned prefix is processed as little-endian `int` blocks, as in
/// standard Murmur3. The tail is where Spark differs: standard Murmur3 packs the
/// last 1–3 bytes into one partial block, while Spark mixes **each** tail byte,
/// sign-extended to an `int`, as a full block of its own (`mixK1` + `mixH1`).
/// This is a historical quirk of Spark's implementation (a faithful version,
/// `hashUnsafeBytes2`, was added later but `Murmur3Hash` never switched because
/// that would change every persisted bucketing and partitioning). Consequently
/// this function equals standard Murmur3 (e.g. the `murmur3` crate) only when
/// `bytes.len()` is a multiple of 4.
#[inline]
pub fn hash_bytes(bytes: &[u8], seed: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(4);
    let mut h1 = seed;
    for chunk in &mut chunks {
        let block = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        h1 = mix_h1(h1, mix_k1(block));
    }
    for &byte in chunks.remainder() {
        // Java's `byte` is signed: sign-extend before mixing.
        h1 = mix_h1(h1, mix_k1(byte as i8 as i32 as u32));
    }
    fmix(h1, bytes.len() as u32)
}

/// `FLOAT`: Spark hashes `floatToIntBits(if (f == -0.0f) 0.0f else f)`, so
/// `-0.0` hashes like `0.0` and every NaN like the canonical NaN.
#[inline]
fn hash_f32(f: f32, seed: u32) -> u32 {
    let bits = if f == 0.0 {
        0 // both 0.0 and -0.0
    } else if f.is_nan() {
        0x7fc0_0000 // Java's canonical NaN (floatToIntBits)
    } else {
        f.to_bits()
    };
    hash_int(bits as i32, seed)
}

/// `DOUBLE`: like [`hash_f32`] with `doubleToLongBits` and [`hash_long`].
#[inline]
fn hash_f64(f: f64, seed: u32) -> u32 {
    let bits = if f == 0.0 {
        0
    } else if f.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        f.to_bits()
    };
    hash_long(bits as i64, seed)
}

/// Strips a big-endian two's-complement integer down to the minimal encoding
/// Java's `BigInteger.toByteArray()` produces: redundant leading `0x00` (for
/// non-negative values) or `0xff` (for negative values) bytes are dropped as
/// long as the sign bit of the next byte still gives the same sign. At least one
/// byte is always kept (`0` is `[0x00]`, `-1` is `[0xff]`).
fn java_big_integer_bytes(be: &[u8]) -> &[u8] {
    let mut start = 0;
    while start + 1 < be.len() {
        let (byte, next_negative) = (be[start], be[start + 1] & 0x80 != 0);
        if (byte == 0x00 && !next_negative) || (byte == 0xff && next_negative) {
            start += 1;
        } else {
            break;
        }
    }
    &be[start..]
}

/// `DECIMAL(p, s)` with `p > 18`: Spark hashes the bytes of
/// `unscaledValue().toByteArray()`.
#[inline]
fn hash_big_decimal_i128(unscaled: i128, seed: u32) -> u32 {
    hash_bytes(java_big_integer_bytes(&unscaled.to_be_bytes()), seed)
}

#[inline]
fn hash_big_decimal_i256(unscaled: i256, seed: u32) -> u32 {
    hash_bytes(java_big_integer_bytes(&unscaled.to_be_bytes()), seed)
}

/// Spark's `Decimal.MAX_LONG_DIGITS`: decimals up to this precision are stored
/// (and hashed) as their unscaled `long`.
const MAX_LONG_DIGITS: u8 = 18;

/// Applies `f(value, running_hash)` to every non-null row.
///
/// The no-null branch is a straight zip of two slices/iterators that the
/// compiler can unroll; the null branch walks the validity bitmap alongside.
#[inline(always)]
fn update_each<T>(
    values: impl Iterator<Item = T>,
    nulls: Option<&NullBuffer>,
    hashes: &mut [u32],
    f: impl Fn(T, u32) -> u32,
) {
    match nulls {
        None => hashes
            .iter_mut()
            .zip(values)
            .for_each(|(h, v)| *h = f(v, *h)),
        Some(nulls) => {
            hashes
                .iter_mut()
                .zip(values)
                .zip(nulls.iter())
                .for_each(|((h, v), valid)| {
                    if valid {
                        *h = f(v, *h)
                    }
                })
        }
    }
}

/// The values of one array, downcast once, ready to be hashed either a whole
/// column at a time ([`RowHasher::update`]) or one value at a time
/// ([`RowHasher::hash_at`], used for the elements of nested types).
enum Kind<'a> {
    /// `DataType::Null`: every value is NULL.
    Null,
    Bool(&'a BooleanBuffer),
    I8(&'a [i8]),
    I16(&'a [i16]),
    /// Int32 and Date32.
    I32(&'a [i32]),
    /// Int64, Date64, Timestamp, Time64, Duration and Decimal64.
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    /// Decimal32 (always precision <= 9): hashed as a long like Spark.
    Dec32(&'a [i32]),
    /// Decimal128 with precision <= 18.
    Dec128Long(&'a [i128]),
    /// Decimal128 with precision > 18.
    Dec128Bytes(&'a [i128]),
    /// Decimal256 with precision <= 18.
    Dec256Long(&'a [i256]),
    /// Decimal256 with precision > 18.
    Dec256Bytes(&'a [i256]),
    /// Utf8 and Binary.
    Bytes(&'a [i32], &'a [u8]),
    /// LargeUtf8 and LargeBinary.
    LargeBytes(&'a [i64], &'a [u8]),
    Utf8View(&'a StringViewArray),
    BinaryView(&'a BinaryViewArray),
    FixedBinary(&'a FixedSizeBinaryArray),
    List(&'a [i32], Box<RowHasher<'a>>),
    LargeList(&'a [i64], Box<RowHasher<'a>>),
    FixedSizeList(usize, Box<RowHasher<'a>>),
    Struct(Vec<RowHasher<'a>>),
    /// Offsets, keys and values of the entries.
    Map(&'a [i32], Box<RowHasher<'a>>, Box<RowHasher<'a>>),
    /// Keys normalised to `usize`, and the dictionary values.
    Dictionary(Vec<usize>, Box<RowHasher<'a>>),
}

/// An array prepared for hashing: its validity and its downcast values.
///
/// Built once per column per batch, so the type dispatch happens once, not per
/// row. For flat types [`RowHasher::update`] then runs a monomorphic loop; for
/// nested types each element is hashed with a `match` on the (already downcast)
/// element kind, which keeps the chaining of elements straightforward.
struct RowHasher<'a> {
    nulls: Option<&'a NullBuffer>,
    kind: Kind<'a>,
}

fn primitive<T: ArrowPrimitiveType>(array: &dyn Array) -> &[T::Native] {
    array.as_primitive::<T>().values()
}

impl<'a> RowHasher<'a> {
    fn try_new(array: &'a dyn Array) -> Result<Self> {
        let kind = match array.data_type() {
            DataType::Null => Kind::Null,
            DataType::Boolean => Kind::Bool(array.as_boolean().values()),
            DataType::Int8 => Kind::I8(primitive::<Int8Type>(array)),
            DataType::Int16 => Kind::I16(primitive::<Int16Type>(array)),
            DataType::Int32 => Kind::I32(primitive::<Int32Type>(array)),
            DataType::Date32 => Kind::I32(primitive::<Date32Type>(array)),
            DataType::Int64 => Kind::I64(primitive::<Int64Type>(array)),
            DataType::Date64 => Kind::I64(primitive::<Date64Type>(array)),
            DataType::Timestamp(unit, _) => Kind::I64(match unit {
                TimeUnit::Second => primitive::<TimestampSecondType>(array),
                TimeUnit::Millisecond => primitive::<TimestampMillisecondType>(array),
                TimeUnit::Microsecond => primitive::<TimestampMicrosecondType>(array),
                TimeUnit::Nanosecond => primitive::<TimestampNanosecondType>(array),
            }),
            DataType::Time64(TimeUnit::Microsecond) => {
                Kind::I64(primitive::<Time64MicrosecondType>(array))
            }
            DataType::Time64(TimeUnit::Nanosecond) => {
                Kind::I64(primitive::<Time64NanosecondType>(array))
            }
            DataType::Duration(unit) => Kind::I64(match unit {
                TimeUnit::Second => primitive::<DurationSecondType>(array),
                TimeUnit::Millisecond => primitive::<DurationMillisecondType>(array),
                TimeUnit::Microsecond => primitive::<DurationMicrosecondType>(array),
                TimeUnit::Nanosecond => primitive::<DurationNanosecondType>(array),
            }),
            DataType::UInt8 => Kind::U8(primitive::<UInt8Type>(array)),
            DataType::UInt16 => Kind::U16(primitive::<UInt16Type>(array)),
            DataType::UInt32 => Kind::U32(primitive::<UInt32Type>(array)),
            DataType::UInt64 => Kind::U64(primitive::<UInt64Type>(array)),
            DataType::Float32 => Kind::F32(primitive::<Float32Type>(array)),
            DataType::Float64 => Kind::F64(primitive::<Float64Type>(array)),
            DataType::Decimal32(_, _) => Kind::Dec32(primitive::<Decimal32Type>(array)),
            DataType::Decimal64(_, _) => Kind::I64(primitive::<Decimal64Type>(array)),
            DataType::Decimal128(p, _) => {
                let values = primitive::<Decimal128Type>(array);
                if *p <= MAX_LONG_DIGITS {
                    Kind::Dec128Long(values)
                } else {
                    Kind::Dec128Bytes(values)
                }
            }
            DataType::Decimal256(p, _) => {
                let values = primitive::<Decimal256Type>(array);
                if *p <= MAX_LONG_DIGITS {
                    Kind::Dec256Long(values)
                } else {
                    Kind::Dec256Bytes(values)
                }
            }
            DataType::Utf8 => {
                let a = array.as_string::<i32>();
                Kind::Bytes(a.value_offsets(), a.value_data())
            }
            DataType::Binary => {
                let a = array.as_binary::<i32>();
                Kind::Bytes(a.value_offsets(), a.value_data())
            }
            DataType::LargeUtf8 => {
                let a = array.as_string::<i64>();
                Kind::LargeBytes(a.value_offsets(), a.value_data())
            }
            DataType::LargeBinary => {
                let a = array.as_binary::<i64>();
                Kind::LargeBytes(a.value_offsets(), a.value_data())
            }
            DataType::Utf8View => Kind::Utf8View(array.as_string_view()),
            DataType::BinaryView => Kind::BinaryView(array.as_binary_view()),
            DataType::FixedSizeBinary(_) => Kind::FixedBinary(array.as_fixed_size_binary()),
            DataType::List(_) => {
                let a = array.as_list::<i32>();
                Kind::List(
                    a.value_offsets(),
                    Box::new(RowHasher::try_new(a.values().as_ref())?),
                )
            }
            DataType::LargeList(_) => {
                let a = array.as_list::<i64>();
                Kind::LargeList(
                    a.value_offsets(),
                    Box::new(RowHasher::try_new(a.values().as_ref())?),
                )
            }
            DataType::FixedSizeList(_, size) => {
                let a = array.as_fixed_size_list();
                Kind::FixedSizeList(
                    *size as usize,
                    Box::new(RowHasher::try_new(a.values().as_ref())?),
                )
            }
            DataType::Struct(_) => Kind::Struct(
                array
                    .as_struct()
                    .columns()
                    .iter()
                    .map(|c| RowHasher::try_new(c.as_ref()))
                    .collect::<Result<_>>()?,
            ),
            DataType::Map(_, _) => {
                let a = array.as_map();
                Kind::Map(
                    a.value_offsets(),
                    Box::new(RowHasher::try_new(a.keys().as_ref())?),
                    Box::new(RowHasher::try_new(a.values().as_ref())?),
                )
            }
            DataType::Dictionary(_, _) => {
                let dict = array.as_any_dictionary();
                let values = RowHasher::try_new(dict.values().as_ref())?;
                if dict.values().is_empty() {
                    // A valid dictionary with no values has only NULL keys.
                    Kind::Null
                } else {
                    Kind::Dictionary(dict.normalized_keys(), Box::new(values))
                }
            }
            other => {
                return not_impl_err!("Spark murmur3 hash is not supported for data type {other}");
            }
        };
        Ok(Self {
            nulls: array.nulls().filter(|n| n.null_count() > 0),
            kind,
        })
    }

    /// Hash of the value at `i` seeded with `seed`; `seed` itself if it is NULL.
    fn hash_at(&self, i: usize, seed: u32) -> u32 {
        if self.nulls.is_some_and(|n| n.is_null(i)) {
            return seed;
        }
        match &self.kind {
            Kind::Null => seed,
            Kind::Bool(v) => hash_int(v.value(i) as i32, seed),
            Kind::I8(v) => hash_int(v[i] as i32, seed),
            Kind::I16(v) => hash_int(v[i] as i32, seed),
            Kind::I32(v) => hash_int(v[i], seed),
            Kind::I64(v) => hash_long(v[i], seed),
            Kind::U8(v) => hash_int(v[i] as i32, seed),
            Kind::U16(v) => hash_int(v[i] as i32, seed),
            Kind::U32(v) => hash_long(v[i] as i64, seed),
            Kind::U64(v) => hash_long(v[i] as i64, seed),
            Kind::F32(v) => hash_f32(v[i], seed),
            Kind::F64(v) => hash_f64(v[i], seed),
            Kind::Dec32(v) => hash_long(v[i] as i64, seed),
            Kind::Dec128Long(v) => hash_long(v[i] as i64, seed),
            Kind::Dec128Bytes(v) => hash_big_decimal_i128(v[i], seed),
            Kind::Dec256Long(v) => hash_long(v[i].as_i128() as i64, seed),
            Kind::Dec256Bytes(v) => hash_big_decimal_i256(v[i], seed),
            Kind::Bytes(offsets, data) => {
                hash_bytes(&data[offsets[i] as usize..offsets[i + 1] as usize], seed)
            }
            Kind::LargeBytes(offsets, data) => {
                hash_bytes(&data[offsets[i] as usize..offsets[i + 1] as usize], seed)
            }
            Kind::Utf8View(a) => hash_bytes(a.value(i).as_bytes(), seed),
            Kind::BinaryView(a) => hash_bytes(a.value(i), seed),
            Kind::FixedBinary(a) => hash_bytes(a.value(i), seed),
            // Arrays: chain over the elements; NULL elements are skipped by
            // the element's own `hash_at`.
            Kind::List(offsets, elements) => (offsets[i] as usize..offsets[i + 1] as usize)
                .fold(seed, |h, j| elements.hash_at(j, h)),
            Kind::LargeList(offsets, elements) => (offsets[i] as usize..offsets[i + 1] as usize)
                .fold(seed, |h, j| elements.hash_at(j, h)),
            Kind::FixedSizeList(size, elements) => {
                (i * size..(i + 1) * size).fold(seed, |h, j| elements.hash_at(j, h))
            }
            // Structs: chain over the fields, like the columns of a row.
            Kind::Struct(fields) => fields.iter().fold(seed, |h, f| f.hash_at(i, h)),
            // Maps: key then value, entry after entry.
            Kind::Map(offsets, keys, values) => (offsets[i] as usize..offsets[i + 1] as usize)
                .fold(seed, |h, j| values.hash_at(j, keys.hash_at(j, h))),
            Kind::Dictionary(keys, values) => values.hash_at(keys[i], seed),
        }
    }

    /// Folds every row of the array into `hashes` (same length).
    fn update(&self, hashes: &mut [u32]) {
        let nulls = self.nulls;
        match &self.kind {
            Kind::Null => {}
            Kind::Bool(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_int(v as i32, h)),
            Kind::I8(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_int(*v as i32, h)),
            Kind::I16(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_int(*v as i32, h)),
            Kind::I32(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_int(*v, h)),
            Kind::I64(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_long(*v, h)),
            Kind::U8(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_int(*v as i32, h)),
            Kind::U16(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_int(*v as i32, h)),
            Kind::U32(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_long(*v as i64, h)),
            Kind::U64(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_long(*v as i64, h)),
            Kind::F32(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_f32(*v, h)),
            Kind::F64(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_f64(*v, h)),
            Kind::Dec32(v) => update_each(v.iter(), nulls, hashes, |v, h| hash_long(*v as i64, h)),
            Kind::Dec128Long(v) => {
                update_each(v.iter(), nulls, hashes, |v, h| hash_long(*v as i64, h))
            }
            Kind::Dec128Bytes(v) => {
                update_each(v.iter(), nulls, hashes, |v, h| hash_big_decimal_i128(*v, h))
            }
            Kind::Dec256Long(v) => update_each(v.iter(), nulls, hashes, |v, h| {
                hash_long(v.as_i128() as i64, h)
            }),
            Kind::Dec256Bytes(v) => {
                update_each(v.iter(), nulls, hashes, |v, h| hash_big_decimal_i256(*v, h))
            }
            Kind::Bytes(offsets, data) => update_each(
                offsets
                    .windows(2)
                    .map(|w| &data[w[0] as usize..w[1] as usize]),
                nulls,
                hashes,
                hash_bytes,
            ),
            Kind::LargeBytes(offsets, data) => update_each(
                offsets
                    .windows(2)
                    .map(|w| &data[w[0] as usize..w[1] as usize]),
                nulls,
                hashes,
                hash_bytes,
            ),
            // Views of NULL slots need not point at valid data, so only read
            // the valid ones.
            Kind::Utf8View(a) => update_each(0..a.len(), nulls, hashes, |i, h| {
                hash_bytes(a.value(i).as_bytes(), h)
            }),
            Kind::BinaryView(a) => {
                update_each(0..a.len(), nulls, hashes, |i, h| hash_bytes(a.value(i), h))
            }
            Kind::FixedBinary(a) => {
                update_each(0..a.len(), nulls, hashes, |i, h| hash_bytes(a.value(i), h))
            }
            // Nested types: per row, chaining over the elements.
            Kind::List(..)
            | Kind::LargeList(..)
            | Kind::FixedSizeList(..)
            | Kind::Struct(_)
            | Kind::Map(..)
            | Kind::Dictionary(..) => {
                for (i, h) in hashes.iter_mut().enumerate() {
                    *h = self.hash_at(i, *h);
                }
            }
        }
    }
}

/// Folds the values of `array` into `hashes`, one running hash per row, the way
/// Spark's `Murmur3Hash` folds one column: `hashes[i] = murmur3(array[i],
/// seed = hashes[i])`, and a NULL leaves `hashes[i]` unchanged.
///
/// The caller initialises `hashes` (normally to [`SPARK_HASH_SEED`]) and calls
/// this once per column, in column order. `hashes.len()` must equal
/// `array.len()`.
///
/// Arrow types map to Spark types as follows:
///
/// | Arrow | Spark hashes |
/// |---|---|
/// | Boolean | `hashInt(1 or 0)` |
/// | Int8/16/32, UInt8/16, Date32 | `hashInt(value)` |
/// | Int64, UInt32, UInt64 (as i64 bits), Date64, Timestamp (raw i64, any unit), Time64, Duration | `hashLong(value)` |
/// | Float32 / Float64 | `hashInt(floatToIntBits)` / `hashLong(doubleToLongBits)`, `-0.0` as `0.0`, NaN canonical |
/// | Decimal, precision <= 18 | `hashLong(unscaled)` |
/// | Decimal, precision > 18 | `hashUnsafeBytes(unscaled.toByteArray())` |
/// | Utf8, LargeUtf8, Utf8View, Binary, LargeBinary, BinaryView, FixedSizeBinary | `hashUnsafeBytes(bytes)` |
/// | List, LargeList, FixedSizeList | chained over the elements, NULL elements skipped |
/// | Struct | chained over the fields |
/// | Map | chained over the entries: key, then value |
/// | Dictionary | as its values |
/// | Null | unchanged |
///
/// Other types return a "not implemented" error naming the type.
///
/// Flat types run a tight, monomorphic loop per column (with a separate
/// branch when the column has no NULLs); nested types are hashed row by row.
pub fn update_hashes(array: &dyn Array, hashes: &mut [u32]) -> Result<()> {
    if array.len() != hashes.len() {
        return exec_err!(
            "Spark hash: array of length {} does not match {} row hashes",
            array.len(),
            hashes.len()
        );
    }
    match array.data_type() {
        DataType::Struct(_) => update_struct(array, hashes),
        DataType::Dictionary(_, _) => update_dictionary(array, hashes),
        _ => {
            RowHasher::try_new(array)?.update(hashes);
            Ok(())
        }
    }
}

/// A struct column is its fields chained in order (vectorised per field); rows
/// where the struct itself is NULL keep their incoming hash.
fn update_struct(array: &dyn Array, hashes: &mut [u32]) -> Result<()> {
    let struct_array = array.as_struct();
    match struct_array.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for column in struct_array.columns() {
                update_hashes(column.as_ref(), hashes)?;
            }
        }
        Some(nulls) => {
            let saved = hashes.to_vec();
            for column in struct_array.columns() {
                update_hashes(column.as_ref(), hashes)?;
            }
            for (i, valid) in nulls.iter().enumerate() {
                if !valid {
                    hashes[i] = saved[i];
                }
            }
        }
    }
    Ok(())
}

/// A dictionary column hashes like its values. Two strategies:
///
/// * When every row starts from the same seed (the common case of a dictionary
///   being the first key column) and the dictionary is not larger than the
///   batch, each distinct value is hashed once and the result is gathered by
///   key.
/// * Otherwise the values are gathered by key (`take`) and hashed as a plain
///   column.
fn update_dictionary(array: &dyn Array, hashes: &mut [u32]) -> Result<()> {
    let dict = array.as_any_dictionary();
    let values = dict.values();
    if values.is_empty() {
        // Only possible when every key is NULL: nothing to fold in.
        return Ok(());
    }
    let uniform_seed = match hashes.first() {
        Some(&first) if hashes.iter().all(|&h| h == first) => Some(first),
        _ => None,
    };
    match uniform_seed {
        Some(seed) if values.len() <= hashes.len() => {
            let mut value_hashes = vec![seed; values.len()];
            update_hashes(values.as_ref(), &mut value_hashes)?;
            let key_nulls = dict.keys().nulls().filter(|n| n.null_count() > 0);
            // A NULL value hashes to `seed`, which is what the row holds already.
            update_each(
                dict.normalized_keys().into_iter(),
                key_nulls,
                hashes,
                |k, _| value_hashes[k],
            );
            Ok(())
        }
        _ => {
            let gathered = take(values.as_ref(), dict.keys(), None)?;
            update_hashes(gathered.as_ref(), hashes)
        }
    }
}

/// Spark's `hash(columns...)` for every row: start at [`SPARK_HASH_SEED`] and
/// fold in each column in order (see [`update_hashes`]). Every column must have
/// `num_rows` rows. With no columns every row hashes to 42.
pub fn spark_hash_columns(columns: &[ArrayRef], num_rows: usize) -> Result<Vec<u32>> {
    let mut hashes = vec![SPARK_HASH_SEED; num_rows];
    for column in columns {
        update_hashes(column.as_ref(), &mut hashes)?;
    }
    Ok(hashes)
}

/// Spark's shuffle partition of every row: `pmod(hash(columns), num_partitions)`,
/// written into `out` (cleared first). `hash_buf` is scratch space reused
/// between batches to avoid an allocation per batch.
///
/// **Why `pmod`?** Spark's hash is a signed `int`, and Java's `%` keeps the sign
/// of the dividend (`-7 % 3 == -1`), so `HashPartitioning` uses
/// `Pmod(Murmur3Hash(keys), numPartitions)`, the positive modulus
/// (`((h % n) + n) % n`), to get an id in `0..n`. Using `u32 % n` on the same
/// bits would give different partitions for negative hashes.
///
/// `num_partitions` must be in `1..=i32::MAX`.
pub fn partition_ids(
    columns: &[ArrayRef],
    num_rows: usize,
    num_partitions: usize,
    hash_buf: &mut Vec<u32>,
    out: &mut Vec<u32>,
) -> Result<()> {
    let Ok(n) = i32::try_from(num_partitions) else {
        return exec_err!("Spark hash partitioning: {num_partitions} partitions is too many");
    };
    if n == 0 {
        return exec_err!("Spark hash partitioning needs at least one partition");
    }
    hash_buf.clear();
    hash_buf.resize(num_rows, SPARK_HASH_SEED);
    for column in columns {
        update_hashes(column.as_ref(), hash_buf)?;
    }
    out.clear();
    if n.count_ones() == 1 {
        // For n = 2^k the positive modulus of a two's-complement value is its
        // low k bits: no division needed.
        let mask = (n - 1) as u32;
        out.extend(hash_buf.iter().map(|&h| h & mask));
    } else {
        out.extend(hash_buf.iter().map(|&h| (h as i32).rem_euclid(n) as u32));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The SQL function `hash(expr, ...)`
// ---------------------------------------------------------------------------

/// Replaces `Int64` by `Int32` inside a (possibly nested) literal type; `None`
/// when the type has no `Int64` in a position Spark would type as `INT`.
fn int64_as_int32(data_type: &DataType) -> Option<DataType> {
    let field = |f: &FieldRef| -> Option<FieldRef> {
        int64_as_int32(f.data_type()).map(|t| Arc::new(f.as_ref().clone().with_data_type(t)))
    };
    match data_type {
        DataType::Int64 => Some(DataType::Int32),
        DataType::List(f) => field(f).map(DataType::List),
        DataType::LargeList(f) => field(f).map(DataType::LargeList),
        DataType::FixedSizeList(f, n) => field(f).map(|f| DataType::FixedSizeList(f, *n)),
        DataType::Struct(fields) => {
            let new: Vec<Option<FieldRef>> = fields.iter().map(field).collect();
            if new.iter().all(Option::is_none) {
                return None;
            }
            let fields: Fields = new
                .into_iter()
                .zip(fields.iter())
                .map(|(new, old)| new.unwrap_or_else(|| Arc::clone(old)))
                .collect();
            Some(DataType::Struct(fields))
        }
        _ => None,
    }
}

/// Spark's typing of a literal value, if it differs from DataFusion's.
///
/// Spark types an integer literal as `INT` when it fits in 32 bits (`BIGINT`
/// only otherwise), while DataFusion types every integer literal as `Int64`.
/// Since `hashInt` and `hashLong` differ, `hash(1)` would not match Spark
/// without this. Literal arrays/structs (`array(1, 2)`) are typed element-wise
/// the same way, provided every element fits. Returns `None` when nothing
/// changes (including typed NULLs, which hash the same at any type).
fn spark_literal_value(value: &ScalarValue) -> Option<ScalarValue> {
    match value {
        ScalarValue::Int64(Some(v)) => i32::try_from(*v).ok().map(|v| ScalarValue::Int32(Some(v))),
        ScalarValue::List(_)
        | ScalarValue::LargeList(_)
        | ScalarValue::FixedSizeList(_)
        | ScalarValue::Struct(_) => {
            let target = int64_as_int32(&value.data_type())?;
            let array = value.to_array().ok()?;
            // `safe: false` makes the cast fail (rather than produce NULLs) if
            // some element does not fit in an INT: then Spark would have
            // typed the literal as BIGINT too and we leave it alone.
            let options = CastOptions {
                safe: false,
                ..Default::default()
            };
            let cast = cast_with_options(&array, &target, &options).ok()?;
            ScalarValue::try_from_array(&cast, 0).ok()
        }
        _ => None,
    }
}

/// Spark's typing of the integer literals in a `hash` argument: every
/// literal that [`spark_literal_value`] retypes, anywhere in the expression
/// (`1 + 2`, `CASE .. THEN 1 ..`, `make_array(1, 2)`), except under an explicit
/// `CAST` / `TRY_CAST`, whose type is the user's choice (`CAST(42 AS BIGINT)`
/// is a `BIGINT`, as in Spark).
fn spark_typed_literals(expr: Expr) -> Result<Transformed<Expr>> {
    expr.transform_down(|expr| match expr {
        Expr::Cast(_) | Expr::TryCast(_) => {
            Ok(Transformed::new(expr, false, TreeNodeRecursion::Jump))
        }
        Expr::Literal(value, metadata) => Ok(match spark_literal_value(&value) {
            Some(value) => Transformed::yes(Expr::Literal(value, metadata)),
            None => Transformed::no(Expr::Literal(value, metadata)),
        }),
        other => Ok(Transformed::no(other)),
    })
}

/// Types the integer literals in the arguments of `hash(...)` the way Spark
/// does (see [`SparkHashFunc`]). Registered in the session's analyzer by
/// [`register_spark_hash`]; it must run before DataFusion's type coercion and
/// constant folding, which is where function rewrites run.
#[derive(Debug, Default)]
pub struct SparkHashLiteralTyping;

impl FunctionRewrite for SparkHashLiteralTyping {
    fn name(&self) -> &str {
        "spark_hash_literal_typing"
    }

    fn rewrite(
        &self,
        expr: Expr,
        _schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let Expr::ScalarFunction(ScalarFunction { func, args }) = expr else {
            return Ok(Transformed::no(expr));
        };
        if !func.inner().is::<SparkHashFunc>() {
            return Ok(Transformed::no(Expr::ScalarFunction(ScalarFunction {
                func,
                args,
            })));
        }
        let mut changed = false;
        let args = args
            .into_iter()
            .map(|arg| {
                let typed = spark_typed_literals(arg)?;
                changed |= typed.transformed;
                Ok(typed.data)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformed::new_transformed(
            Expr::ScalarFunction(ScalarFunction { func, args }),
            changed,
        ))
    }
}

/// Registers `hash(...)` ([`spark_hash_udf`]) and its literal typing
/// ([`SparkHashLiteralTyping`]) in `ctx`. Without the rewrite `hash(1)` would
/// hash the literal as a `BIGINT`.
pub fn register_spark_hash(ctx: &SessionContext) -> Result<()> {
    ctx.register_udf(spark_hash_udf());
    ctx.state_ref()
        .write()
        .register_function_rewrite(Arc::new(SparkHashLiteralTyping))
}

/// The SQL function `hash(expr, ...)`: Spark's `Murmur3Hash`, returning `INT`.
///
/// * Takes one or more arguments of any supported type (see [`update_hashes`]).
/// * Chains them from seed 42; NULL arguments are skipped, so `hash(NULL) = 42`.
///   The result is never NULL.
///
/// # Literal typing
///
/// Spark types an integer literal as `INT` when it fits in 32 bits, DataFusion
/// as `Int64`, and the two hash differently (`hashInt` vs `hashLong`). So that
/// `SELECT hash(1)` and `hash('Spark', array(123), 2)` return what Spark
/// returns, the integer literals in `hash`'s arguments are retyped the Spark
/// way before DataFusion types the plan: an `Int64` literal that fits becomes
/// `Int32` (also inside expressions: `hash(a + 1)` with an `INT` column `a`
/// is an `INT`, as in Spark), and a literal list/struct whose `Int64` values
/// all fit becomes the same list/struct of `Int32`. Columns are never retyped
/// (an `Int64` column is a Spark `BIGINT` and hashes with `hashLong`), and
/// neither is anything under an explicit cast: `hash(CAST(42 AS BIGINT))` is
/// Spark's `hash(42L)`.
///
/// This is [`SparkHashLiteralTyping`], a function rewrite of the analyzer
/// (see [`register_spark_hash`]). It has to run there, on the plan as the SQL
/// planner built it: afterwards DataFusion's simplifier folds
/// `CAST(42 AS BIGINT)` into the literal `42`, which can no longer be told
/// apart from a bare `42`. Execution hashes values at the type they arrive
/// with, scalars included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SparkHashFunc {
    signature: Signature,
}

impl Default for SparkHashFunc {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

/// Creates the SQL function `hash(expr, ...)` with Spark semantics (see
/// [`SparkHashFunc`]). Register it with `SessionContext::register_udf`.
pub fn spark_hash_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(SparkHashFunc::default())
}

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION_HASHING,
        "Returns Spark's 32-bit Murmur3 hash of the arguments (seed 42, chained \
         over the arguments, NULLs skipped), as Spark SQL's `hash` does. Integer \
         literals that fit in 32 bits are hashed as INT, as Spark types them.",
        "hash(expression[, ..., expression_n])",
    )
    .with_sql_example(
        "```sql\n> SELECT hash('Spark', make_array(123), 2);\n+-------------+\n| -1321691492 |\n+-------------+\n```",
    )
    .with_argument("expression", "Values of any supported type to hash together.")
    .build()
});

impl ScalarUDFImpl for SparkHashFunc {
    fn name(&self) -> &str {
        "hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.is_empty() {
            return plan_err!("hash requires at least one argument");
        }
        for data_type in arg_types {
            // Fail at planning time, naming the type, rather than mid-query.
            RowHasher::try_new(new_empty_array(data_type).as_ref())?;
        }
        Ok(DataType::Int32)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let arg_types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let return_type = self.return_type(&arg_types)?;
        // Like Spark's Murmur3Hash, the result is never NULL.
        Ok(Arc::new(Field::new(self.name(), return_type, false)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("hash requires at least one argument");
        }
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // Scalar-only calls (constant folding) hash one row and stay scalar.
        let num_rows = if all_scalar { 1 } else { args.number_rows };
        let columns = args
            .args
            .into_iter()
            .map(|arg| match arg {
                ColumnarValue::Array(array) => Ok(array),
                ColumnarValue::Scalar(value) => value.to_array_of_size(num_rows),
            })
            .collect::<Result<Vec<_>>>()?;
        let hashes = spark_hash_columns(&columns, num_rows)?;
        let result: Int32Array = hashes
            .into_iter()
            .map(|h| h as i32)
            .collect::<Vec<_>>()
            .into();
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(
                result.value(0),
            ))))
        } else {
            Ok(ColumnarValue::Array(Arc::new(result)))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use arrow::array::{
        BooleanArray, Decimal128Array, DictionaryArray, Float32Array, Float64Array, Int64Array,
        ListArray, MapArray, StringArray, StructArray,
    };
    use arrow::datatypes::Int32Type;

    fn pmod(h: u32, n: i32) -> u32 {
        let h = h as i32;
        (((h % n) + n) % n) as u32
    }

    #[test]
    fn spark_test_vectors() {
        // From Spark's Murmur3_x86_32Suite (seed 0).
        assert_eq!(hash_int(0, 0) as i32, 593689054);
        assert_eq!(hash_int(42, 0) as i32, -1134849565);
        assert_eq!(hash_int(-42, 0) as i32, -189366624);
        assert_eq!(hash_long(0, 0) as i32, 1669671676);
        assert_eq!(hash_long(42, 0) as i32, 1871679806);
    }

    #[test]
    fn hash_bytes_matches_standard_murmur3_on_whole_blocks() {
        let bytes: Vec<u8> = (0u32..64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..=64).step_by(4) {
            for seed in [0, 42, 0xdead_beef] {
                let data = &bytes[..len];
                let expected = murmur3::murmur3_32(&mut Cursor::new(data), seed).unwrap();
                assert_eq!(hash_bytes(data, seed), expected, "len {len} seed {seed}");
            }
        }
        // Spark's tail handling differs from the standard one.
        let data = &bytes[..7];
        let standard = murmur3::murmur3_32(&mut Cursor::new(data), 42).unwrap();
        assert_ne!(hash_bytes(data, 42), standard);
    }

    #[test]
    fn string_hash_and_tail_bytes() {
        assert_eq!(hash_bytes(b"hello", SPARK_HASH_SEED), 3286402344);
        // Each tail byte is sign-extended to a full block: 0xff is mixed as -1.
        assert_eq!(hash_bytes(&[0xff], 7), fmix(mix_h1(7, mix_k1(u32::MAX)), 1));
    }

    #[test]
    fn floats_are_normalised() {
        assert_eq!(hash_f32(-0.0, 42), hash_f32(0.0, 42));
        assert_eq!(hash_f32(0.0, 42), hash_int(0, 42));
        assert_eq!(
            hash_f32(f32::from_bits(0x7fc0_0001), 42),
            hash_int(0x7fc0_0000, 42)
        );
        assert_eq!(hash_f32(1.5, 42), hash_int(1.5f32.to_bits() as i32, 42));
        assert_eq!(hash_f64(-0.0, 42), hash_long(0, 42));
        assert_eq!(
            hash_f64(-f64::NAN, 42),
            hash_long(0x7ff8_0000_0000_0000, 42)
        );
        let f32s: ArrayRef = Arc::new(Float32Array::from(vec![-0.0, 0.0, f32::NAN]));
        let f64s: ArrayRef = Arc::new(Float64Array::from(vec![-0.0, 0.0, 2.5]));
        let hashes = spark_hash_columns(&[f32s, f64s], 3).unwrap();
        assert_eq!(hashes[0], hashes[1]);
        assert_eq!(hashes[2], hash_f64(2.5, hash_int(0x7fc0_0000, 42)));
    }

    #[test]
    fn big_integer_bytes_like_java() {
        let cases: [(i128, &[u8]); 7] = [
            (0, &[0x00]),
            (-1, &[0xff]),
            (127, &[0x7f]),
            (128, &[0x00, 0x80]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
            (255, &[0x00, 0xff]),
        ];
        for (value, expected) in cases {
            assert_eq!(
                java_big_integer_bytes(&value.to_be_bytes()),
                expected,
                "{value}"
            );
            assert_eq!(
                java_big_integer_bytes(&i256::from_i128(value).to_be_bytes()),
                expected
            );
        }
    }

    #[test]
    fn decimals() {
        let small: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(12345), None, Some(-7)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        let hashes = spark_hash_columns(&[small], 3).unwrap();
        assert_eq!(hashes, vec![hash_long(12345, 42), 42, hash_long(-7, 42)]);

        let big: ArrayRef = Arc::new(
            Decimal128Array::from(vec![12345, -1, i128::MAX])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        let hashes = spark_hash_columns(&[big], 3).unwrap();
        assert_eq!(hashes[0], hash_bytes(&[0x30, 0x39], 42));
        assert_eq!(hashes[1], hash_bytes(&[0xff], 42));
        assert_eq!(hashes[2], hash_bytes(&i128::MAX.to_be_bytes(), 42));
    }

    #[test]
    fn partition_ids_by_hand() {
        let values = vec![Some(1), None, Some(-5), Some(42), Some(7), Some(100_000)];
        let column: ArrayRef = Arc::new(Int32Array::from(values.clone()));
        let n = 7;
        let expected: Vec<u32> = values
            .iter()
            .map(|v| {
                pmod(
                    v.map_or(SPARK_HASH_SEED, |v| hash_int(v, SPARK_HASH_SEED)),
                    n,
                )
            })
            .collect();
        assert!(
            values
                .iter()
                .flatten()
                .any(|&v| (hash_int(v, SPARK_HASH_SEED) as i32) < 0),
            "the case should include a negative hash"
        );
        let (mut buf, mut out) = (Vec::new(), vec![99]);
        partition_ids(
            std::slice::from_ref(&column),
            values.len(),
            n as usize,
            &mut buf,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, expected);
        // NULL row: hash stays 42.
        assert_eq!(out[1], 42 % 7);

        // Power-of-two fast path agrees with pmod.
        partition_ids(&[column], values.len(), 8, &mut buf, &mut out).unwrap();
        let expected: Vec<u32> = buf.iter().map(|&h| pmod(h, 8)).collect();
        assert_eq!(out, expected);

        assert!(partition_ids(&[], 1, 0, &mut buf, &mut out).is_err());
    }

    #[test]
    fn multi_column_chains() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)]));
        let strs: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("bcdef"), None]));
        let longs: ArrayRef = Arc::new(Int64Array::from(vec![10, 20, 30]));
        let bools: ArrayRef = Arc::new(BooleanArray::from(vec![true, false, true]));
        let columns = [ints, strs, longs, bools];
        let expected = [
            hash_int(1, hash_long(10, hash_bytes(b"a", hash_int(1, 42)))),
            hash_int(0, hash_long(20, hash_bytes(b"bcdef", 42))),
            hash_int(1, hash_long(30, hash_int(-3, 42))),
        ];
        assert_eq!(spark_hash_columns(&columns, 3).unwrap(), expected);
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        partition_ids(&columns, 3, 200, &mut buf, &mut out).unwrap();
        let expected_ids: Vec<u32> = expected.iter().map(|&h| pmod(h, 200)).collect();
        assert_eq!(out, expected_ids);
    }

    #[test]
    fn views_and_dictionaries_match_plain_strings() {
        let values = vec![
            Some("alpha"),
            None,
            Some("a much longer string than twelve bytes"),
            Some(""),
            Some("alpha"),
            Some("xyz"),
        ];
        let plain: ArrayRef = Arc::new(StringArray::from(values.clone()));
        let view: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
        let dict: ArrayRef = Arc::new(
            values
                .iter()
                .copied()
                .collect::<DictionaryArray<Int32Type>>(),
        );
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6]));
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut ids = |columns: &[ArrayRef]| {
            partition_ids(columns, values.len(), 13, &mut buf, &mut out).unwrap();
            out.clone()
        };
        let expected = ids(std::slice::from_ref(&plain));
        assert_eq!(ids(std::slice::from_ref(&view)), expected);
        assert_eq!(ids(std::slice::from_ref(&dict)), expected);
        // As a second column the seeds differ per row (the `take` path).
        let expected = ids(&[ints.clone(), plain]);
        assert_eq!(ids(&[ints.clone(), view]), expected);
        assert_eq!(ids(&[ints, dict]), expected);
    }

    #[test]
    fn sliced_arrays() {
        let strings = StringArray::from(vec![Some("a"), None, Some("bb"), Some("ccc")]);
        let sliced: ArrayRef = Arc::new(strings.slice(1, 3));
        assert_eq!(
            spark_hash_columns(&[sliced], 3).unwrap(),
            vec![42, hash_bytes(b"bb", 42), hash_bytes(b"ccc", 42)]
        );
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1)]),
            Some(vec![Some(2), Some(3)]),
            Some(vec![]),
        ]);
        let sliced: ArrayRef = Arc::new(list.slice(1, 2));
        assert_eq!(
            spark_hash_columns(&[sliced], 2).unwrap(),
            vec![hash_int(3, hash_int(2, 42)), 42]
        );
    }

    #[test]
    fn nested_types_chain() {
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(2)]),
            None,
            Some(vec![]),
        ]));
        assert_eq!(
            spark_hash_columns(&[list], 3).unwrap(),
            vec![hash_int(2, hash_int(1, 42)), 42, 42]
        );

        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), Some(2), None]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "z"]));
        let struct_array = StructArray::try_new(
            Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Utf8, false),
            ]),
            vec![a, b],
            Some(NullBuffer::from(vec![true, false, true])),
        )
        .unwrap();
        let expected = vec![hash_bytes(b"x", hash_int(1, 42)), 42, hash_bytes(b"z", 42)];
        let column: ArrayRef = Arc::new(struct_array);
        assert_eq!(
            spark_hash_columns(std::slice::from_ref(&column), 3).unwrap(),
            expected
        );
        // The same struct inside a list goes through the row-wise path.
        let offsets = arrow::buffer::OffsetBuffer::from_lengths([3]);
        let field = Arc::new(Field::new("item", column.data_type().clone(), true));
        let list: ArrayRef = Arc::new(ListArray::new(field, offsets, column, None));
        assert_eq!(
            spark_hash_columns(&[list], 1).unwrap(),
            vec![hash_bytes(b"z", hash_bytes(b"x", hash_int(1, 42)))]
        );

        let values = Int32Array::from(vec![Some(10), None, Some(30)]);
        let map = MapArray::new_from_strings(["k1", "k2", "k3"].into_iter(), &values, &[0, 2, 3])
            .unwrap();
        let map: ArrayRef = Arc::new(map);
        assert_eq!(
            spark_hash_columns(&[map], 2).unwrap(),
            vec![
                hash_bytes(b"k2", hash_int(10, hash_bytes(b"k1", 42))),
                hash_int(30, hash_bytes(b"k3", 42)),
            ]
        );
    }

    #[test]
    fn unsupported_type_is_an_error() {
        let column = arrow::array::new_null_array(&DataType::Float16, 1);
        let err = spark_hash_columns(&[column], 1).unwrap_err().to_string();
        assert!(err.contains("Float16"), "{err}");
    }

    async fn query_i32(ctx: &SessionContext, sql: &str) -> i32 {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = batches[0].column(0);
        assert_eq!(column.data_type(), &DataType::Int32, "{sql}");
        column.as_primitive::<Int32Type>().value(0)
    }

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        register_spark_hash(&ctx).unwrap();
        ctx
    }

    #[tokio::test]
    async fn sql_hash_matches_spark() {
        let ctx = context();
        assert_eq!(query_i32(&ctx, "SELECT hash(1)").await, -559580957);
        assert_eq!(
            query_i32(&ctx, "SELECT hash('hello')").await as u32,
            3286402344
        );
        assert_eq!(query_i32(&ctx, "SELECT hash(NULL)").await, 42);
        // Spark's `array(...)` is DataFusion's `make_array(...)` (or `[...]`).
        for array in ["make_array(123)", "[123]"] {
            let sql = format!("SELECT hash('Spark', {array}, 2)");
            assert_eq!(query_i32(&ctx, &sql).await, -1321691492, "{sql}");
        }
        // With `array` registered as an alias of make_array, Spark's own query.
        let make_array = datafusion::functions_nested::make_array::make_array_udf();
        ctx.register_udf(make_array.as_ref().clone().with_aliases(["array"]));
        assert_eq!(
            query_i32(&ctx, "SELECT hash('Spark', array(123), 2)").await,
            -1321691492
        );
        // Literals too large for INT stay BIGINT, as in Spark.
        assert_eq!(
            query_i32(&ctx, "SELECT hash(3000000000)").await,
            hash_long(3_000_000_000, 42) as i32
        );
        assert!(ctx.sql("SELECT hash()").await.is_err());
    }

    #[tokio::test]
    async fn sql_hash_over_columns() {
        let ctx = context();
        ctx.sql("CREATE TABLE t (a BIGINT, s VARCHAR) AS VALUES (1, 'x'), (NULL, 'y')")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        // Columns keep their type: a BIGINT column hashes with hashLong, while
        // the literal 1 next to it is simplified to an INT.
        let batches = ctx
            .sql("SELECT hash(a), hash(1, a, s) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let first = batch.column(0).as_primitive::<Int32Type>();
        let second = batch.column(1).as_primitive::<Int32Type>();
        assert_eq!(first.value(0), hash_long(1, 42) as i32);
        assert_eq!(first.value(1), 42);
        assert_eq!(
            second.value(0),
            hash_bytes(b"x", hash_long(1, hash_int(1, 42))) as i32
        );
        assert_eq!(second.value(1), hash_bytes(b"y", hash_int(1, 42)) as i32);

        let plan = ctx
            .sql("EXPLAIN SELECT hash(1, a) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(text.contains("hash(Int32(1), t.a)"), "{text}");
    }

    #[test]
    fn rewrite_retypes_literals_outside_casts() {
        let udf = Arc::new(spark_hash_udf());
        let rewrite = |args: Vec<Expr>| {
            let call = Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(&udf), args));
            SparkHashLiteralTyping
                .rewrite(call, &DFSchema::empty(), &ConfigOptions::default())
                .unwrap()
        };
        let column = datafusion::prelude::col("a");
        let make_array = datafusion::functions_nested::expr_fn::make_array(vec![
            datafusion::prelude::lit(1i64),
            datafusion::prelude::lit(2i64),
        ]);
        let list = datafusion::prelude::lit(ScalarValue::List(ScalarValue::new_list_nullable(
            &[ScalarValue::Int64(Some(7))],
            &DataType::Int64,
        )));
        let cast = datafusion::prelude::cast(datafusion::prelude::lit(5i64), DataType::Int64);
        let sum = column.clone() + datafusion::prelude::lit(1i64);
        let big = datafusion::prelude::lit(3_000_000_000i64);
        let typed = rewrite(vec![
            datafusion::prelude::lit(5i64),
            column.clone(),
            make_array,
            list,
            cast.clone(),
            sum,
            big.clone(),
        ]);
        assert!(typed.transformed);
        let Expr::ScalarFunction(call) = typed.data else {
            panic!("expected a call");
        };
        assert_eq!(call.args[0], datafusion::prelude::lit(5i32));
        assert_eq!(call.args[1], column);
        let Expr::ScalarFunction(inner) = &call.args[2] else {
            panic!("make_array expected");
        };
        assert_eq!(inner.args[0], datafusion::prelude::lit(1i32));
        let Expr::Literal(ScalarValue::List(list), _) = &call.args[3] else {
            panic!("list literal expected");
        };
        assert_eq!(list.value_type(), DataType::Int32);
        // An explicit cast is the user's type: left alone.
        assert_eq!(call.args[4], cast);
        assert_eq!(
            call.args[5],
            column.clone() + datafusion::prelude::lit(1i32)
        );
        // Too large for an INT: a BIGINT in Spark too.
        assert_eq!(call.args[6], big);

        // Nothing to do: unchanged.
        let typed = rewrite(vec![column.clone(), datafusion::prelude::lit(1i32)]);
        assert!(!typed.transformed);
        // Other functions are not touched.
        let other = datafusion::functions::math::expr_fn::abs(datafusion::prelude::lit(1i64));
        let typed = SparkHashLiteralTyping
            .rewrite(other.clone(), &DFSchema::empty(), &ConfigOptions::default())
            .unwrap();
        assert!(!typed.transformed);
        assert_eq!(typed.data, other);
    }

    /// Spark's `hash(v)` for a `BIGINT` `v`: Murmur3 x86_32 with seed 42 over
    /// its 8 little-endian bytes (a whole number of blocks, so the standard
    /// algorithm of the `murmur3` crate agrees with Spark's).
    fn spark_hash_of_long(v: i64) -> i32 {
        murmur3::murmur3_32(&mut Cursor::new(v.to_le_bytes()), 42).unwrap() as i32
    }

    /// The same for an `INT`: 4 little-endian bytes.
    fn spark_hash_of_int(v: i32) -> i32 {
        murmur3::murmur3_32(&mut Cursor::new(v.to_le_bytes()), 42).unwrap() as i32
    }

    #[tokio::test]
    async fn explicit_bigint_casts_hash_as_bigint() {
        let ctx = context();
        // Spark: SELECT hash(42L) = 1316951768.
        assert_eq!(spark_hash_of_long(42), 1316951768);
        assert_eq!(
            query_i32(&ctx, "SELECT hash(CAST(42 AS BIGINT))").await,
            1316951768
        );
        assert_eq!(
            query_i32(&ctx, "SELECT hash(TRY_CAST(42 AS BIGINT))").await,
            1316951768
        );
        for v in [
            -7i64,
            0,
            1,
            -1,
            2_147_483_647,
            -2_147_483_648,
            3_000_000_000,
        ] {
            let sql = format!("SELECT hash(CAST({v} AS BIGINT))");
            assert_eq!(query_i32(&ctx, &sql).await, spark_hash_of_long(v), "{sql}");
        }
        // Bare literals that fit are INTs, as in Spark.
        for v in [42i32, -7, 0] {
            let sql = format!("SELECT hash({v})");
            assert_eq!(query_i32(&ctx, &sql).await, spark_hash_of_int(v), "{sql}");
        }
        assert_ne!(spark_hash_of_int(-7), spark_hash_of_long(-7));
        // Several arguments: each keeps its own type.
        assert_eq!(
            query_i32(&ctx, "SELECT hash(1, CAST(-7 AS BIGINT))").await,
            hash_long(-7, hash_int(1, 42)) as i32
        );
        assert_eq!(
            query_i32(&ctx, "SELECT hash(CAST(-7 AS BIGINT), 1)").await,
            hash_int(1, hash_long(-7, 42)) as i32
        );
        // Constant expressions are typed like Spark types them too.
        assert_eq!(
            query_i32(&ctx, "SELECT hash(40 + 2)").await,
            spark_hash_of_int(42)
        );
        assert_eq!(
            query_i32(&ctx, "SELECT hash(CAST(40 AS BIGINT) + 2)").await,
            spark_hash_of_long(42)
        );

        ctx.sql("CREATE TABLE ab (a INT, b INT) AS VALUES (1, -7), (NULL, 42), (-3, NULL)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batches = ctx
            .sql("SELECT hash(a, CAST(b AS BIGINT)) AS h1, hash(a, b) AS h2, hash(a + 1) AS h3 FROM ab")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let column = |i: usize| {
            let c = batch.column(i).as_primitive::<Int32Type>();
            (0..c.len()).map(|r| c.value(r)).collect::<Vec<_>>()
        };
        assert_eq!(
            column(0),
            [
                hash_long(-7, hash_int(1, 42)) as i32,
                hash_long(42, 42) as i32,
                hash_int(-3, 42) as i32,
            ]
        );
        assert_eq!(
            column(1),
            [
                hash_int(-7, hash_int(1, 42)) as i32,
                hash_int(42, 42) as i32,
                hash_int(-3, 42) as i32,
            ]
        );
        // `a + 1` with an INT column is an INT in Spark.
        assert_eq!(
            column(2),
            [hash_int(2, 42) as i32, 42, hash_int(-2, 42) as i32]
        );
    }
}

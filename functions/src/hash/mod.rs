//! Spark-compatible Murmur3: the SQL function `hash(...)` and the shuffle's
//! partition ids. See [`spark_murmur3`].

pub mod spark_murmur3;

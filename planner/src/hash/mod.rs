pub mod spark_murmur3;

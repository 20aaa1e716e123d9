pub mod tpch;

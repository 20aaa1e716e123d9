//! Record batches and schemas from the `iceberg` crate's Arrow (58) to
//! DataFusion's (59), through the Arrow C Data Interface.
//!
//! Two major versions of Arrow live in one build: `iceberg` 0.10 reads
//! Parquet into Arrow 58 arrays, DataFusion 55 runs on Arrow 59. Their Rust
//! types differ, but both speak the C Data Interface, the ABI made for
//! handing arrays between libraries that do not share types: Arrow 58
//! exports a batch as a C struct array (`FFI_ArrowArray` + `FFI_ArrowSchema`,
//! buffers not copied), and Arrow 59 imports it, taking ownership of the
//! buffers, which are released by Arrow 58's release callback when the last
//! Arrow 59 array using them is dropped.
//!
//! ```text
//!   iceberg reader ─▶ RecordBatch(58) ─▶ StructArray ─▶ FFI_ArrowArray ─┐
//!                                                                        │ same C ABI
//!   DataFusion    ◀─ RecordBatch(59) ◀─ StructArray ◀─ FFI_ArrowArray ◀─┘
//! ```
//!
//! Field metadata (Iceberg's `PARQUET:field_id`) crosses with the schema.
//!
//! Schemas also cross the other way ([`schema_to_58`]): a table minispark
//! creates from a DataFrame gets its Iceberg schema from `iceberg`'s
//! Arrow 58 conversion.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, RecordBatchOptions, StructArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};

/// The C structs of Arrow 58, moved into Arrow 59's (same layout, the C
/// Data Interface's): `from_raw` takes the contents and leaves the source
/// released, so it is dropped without freeing anything.
fn move_array(mut array: arrow58::ffi::FFI_ArrowArray) -> FFI_ArrowArray {
    // SAFETY: both types are `#[repr(C)]` definitions of the C Data
    // Interface's `ArrowArray` struct; `from_raw` moves the struct out and
    // writes an empty (released) one in its place.
    unsafe { FFI_ArrowArray::from_raw(&mut array as *mut _ as *mut FFI_ArrowArray) }
}

fn move_schema(mut schema: arrow58::ffi::FFI_ArrowSchema) -> FFI_ArrowSchema {
    // SAFETY: as in `move_array`, for the C `ArrowSchema` struct.
    unsafe { FFI_ArrowSchema::from_raw(&mut schema as *mut _ as *mut FFI_ArrowSchema) }
}

fn error(e: impl std::fmt::Display) -> ArrowError {
    ArrowError::CDataInterface(format!("Arrow 58 to 59: {e}"))
}

/// An Arrow 58 schema as an Arrow 59 one, with field metadata.
pub fn schema(schema: &arrow58::datatypes::Schema) -> Result<Schema, ArrowError> {
    let exported = arrow58::ffi::FFI_ArrowSchema::try_from(schema).map_err(error)?;
    let imported = move_schema(exported);
    Schema::try_from(&imported)
}

/// The C struct of Arrow 59 moved into Arrow 58's (the reverse of
/// [`move_schema`]).
fn move_schema_to_58(mut schema: FFI_ArrowSchema) -> arrow58::ffi::FFI_ArrowSchema {
    // SAFETY: as in `move_array`: both are the C `ArrowSchema` struct.
    unsafe {
        arrow58::ffi::FFI_ArrowSchema::from_raw(
            &mut schema as *mut _ as *mut arrow58::ffi::FFI_ArrowSchema,
        )
    }
}

/// An Arrow 59 schema as an Arrow 58 one, with field metadata.
pub fn schema_to_58(schema: &Schema) -> Result<arrow58::datatypes::Schema, ArrowError> {
    let exported = FFI_ArrowSchema::try_from(schema)?;
    let imported = move_schema_to_58(exported);
    arrow58::datatypes::Schema::try_from(&imported)
        .map_err(|e| ArrowError::CDataInterface(format!("Arrow 59 to 58: {e}")))
}

/// An Arrow 58 record batch as an Arrow 59 one, its buffers shared (not
/// copied).
pub fn batch(batch: arrow58::record_batch::RecordBatch) -> Result<RecordBatch, ArrowError> {
    let rows = batch.num_rows();
    let data = arrow58::array::Array::into_data(arrow58::array::StructArray::from(batch));
    let (array, schema) = arrow58::ffi::to_ffi(&data).map_err(error)?;
    let (array, schema) = (move_array(array), move_schema(schema));
    // SAFETY: `array` and `schema` were just exported together by Arrow 58
    // and describe one valid struct array.
    let data = unsafe { from_ffi(array, &schema) }?;
    let DataType::Struct(fields) = data.data_type().clone() else {
        return Err(error(format!(
            "a record batch crossed as {}, not a struct",
            data.data_type()
        )));
    };
    let columns = StructArray::from(data).into_parts().1;
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

/// `schema` with the types DataFusion gives the same data read from
/// Parquet: strings and binaries as view types (`Utf8View`, `BinaryView`)
/// at the top level (`datafusion.execution.parquet.schema_force_view_types`),
/// and no field-id metadata inside lists, maps and structs (a column's own
/// field id stays on its field).
pub fn with_view_types(schema: &Schema) -> Schema {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            let viewed = match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
                DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
                other => without_nested_metadata(other),
            };
            Arc::new(f.as_ref().clone().with_data_type(viewed))
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// `data_type` with the metadata of its nested fields dropped.
fn without_nested_metadata(data_type: &DataType) -> DataType {
    let field = |f: &arrow::datatypes::FieldRef| {
        Arc::new(
            f.as_ref()
                .clone()
                .with_metadata(Default::default())
                .with_data_type(without_nested_metadata(f.data_type())),
        )
    };
    match data_type {
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        other => other.clone(),
    }
}

/// `batch` with the columns of `target` (same names and order, as a scan
/// declared them): types Arrow 58 and 59 spell alike are kept, field
/// metadata is `target`'s.
pub fn conform(batch: RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.num_columns() != target.fields().len() {
        return Err(error(format!(
            "a batch of {} columns for a scan of {}",
            batch.num_columns(),
            target.fields().len()
        )));
    }
    let rows = batch.num_rows();
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(target),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{AsArray, Decimal128Array, Int64Array, ListArray, StringArray};
    use arrow::datatypes::{Int32Type, TimeUnit};
    use arrow58::array as a58;
    use arrow58::datatypes as d58;

    use super::*;

    fn field_id(id: &str) -> HashMap<String, String> {
        HashMap::from([("PARQUET:field_id".to_string(), id.to_string())])
    }

    /// Ints, strings, time-zoned timestamps, decimals, lists and NULLs keep
    /// their values, and field ids their metadata.
    #[test]
    fn a_batch_crosses_with_its_values_and_field_ids() {
        let list = a58::ListArray::from_iter_primitive::<d58::Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]);
        let schema58 = Arc::new(d58::Schema::new(vec![
            d58::Field::new("id", d58::DataType::Int64, false).with_metadata(field_id("1")),
            d58::Field::new("name", d58::DataType::Utf8, true).with_metadata(field_id("2")),
            d58::Field::new(
                "at",
                d58::DataType::Timestamp(d58::TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            d58::Field::new("price", d58::DataType::Decimal128(12, 2), true),
            d58::Field::new("tags", a58::Array::data_type(&list).clone(), true),
        ]));
        let batch58 = arrow58::record_batch::RecordBatch::try_new(
            Arc::clone(&schema58),
            vec![
                Arc::new(a58::Int64Array::from(vec![1, -2, i64::MAX])),
                Arc::new(a58::StringArray::from(vec![Some("a"), None, Some("ü")])),
                Arc::new(
                    a58::TimestampMicrosecondArray::from(vec![Some(1), None, Some(-5)])
                        .with_timezone("+00:00"),
                ),
                Arc::new(
                    a58::Decimal128Array::from(vec![Some(12345), Some(-1), None])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
                Arc::new(list),
            ],
        )
        .unwrap();

        let got = batch(batch58).unwrap();
        assert_eq!(got.num_rows(), 3);
        let ids = got.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values().to_vec(), vec![1, -2, i64::MAX]);
        let names = got
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            vec![Some("a"), None, Some("ü")]
        );
        assert_eq!(
            got.schema().field(2).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert!(got.column(2).is_null(1));
        let prices = got
            .column(3)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!((prices.precision(), prices.scale()), (12, 2));
        assert_eq!(
            prices.iter().collect::<Vec<_>>(),
            vec![Some(12345), Some(-1), None]
        );
        let tags = got.column(4).as_any().downcast_ref::<ListArray>().unwrap();
        assert!(tags.is_null(1));
        let first = tags.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(first.iter().collect::<Vec<_>>(), vec![Some(1), None]);
        assert_eq!(tags.value(2).len(), 0);
        assert_eq!(got.schema().field(0).metadata(), &field_id("1"));
        assert_eq!(got.schema().field(1).metadata(), &field_id("2"));

        let schema59 = schema(&schema58).unwrap();
        assert_eq!(schema59.fields().len(), 5);
        assert_eq!(schema59.field(0).metadata(), &field_id("1"));
        assert_eq!(schema59.field(3).data_type(), &DataType::Decimal128(12, 2));
    }

    /// A schema crosses from 59 to 58 and back unchanged: types (nested,
    /// time-zoned, decimal, view) and field metadata.
    #[test]
    fn a_schema_crosses_both_ways() {
        use arrow::datatypes::Field;
        let element = Field::new("element", DataType::Int32, true).with_metadata(field_id("7"));
        let schema59 = Schema::new(vec![
            Field::new("id", DataType::Int64, false).with_metadata(field_id("1")),
            Field::new("name", DataType::Utf8View, true).with_metadata(field_id("2")),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("price", DataType::Decimal128(12, 2), true),
            Field::new("tags", DataType::List(Arc::new(element)), true),
        ]);
        let schema58 = schema_to_58(&schema59).unwrap();
        assert_eq!(schema58.fields().len(), 5);
        assert_eq!(schema58.field(1).data_type(), &d58::DataType::Utf8View);
        assert_eq!(schema58.field(0).metadata(), &field_id("1"));
        let d58::DataType::List(inner) = schema58.field(4).data_type() else {
            panic!("{schema58:?}");
        };
        assert_eq!(inner.metadata(), &field_id("7"));
        assert_eq!(schema(&schema58).unwrap(), schema59);
    }

    /// A batch of no columns (what `count(*)` reads) keeps its row count.
    #[test]
    fn a_batch_of_no_columns_keeps_its_rows() {
        let batch58 = arrow58::record_batch::RecordBatch::try_new_with_options(
            Arc::new(d58::Schema::empty()),
            vec![],
            &arrow58::record_batch::RecordBatchOptions::new().with_row_count(Some(7)),
        )
        .unwrap();
        let got = batch(batch58).unwrap();
        assert_eq!((got.num_rows(), got.num_columns()), (7, 0));
    }

    /// A column is cast to the type the scan declared, and a batch of the
    /// wrong width is an error.
    #[test]
    fn conform_casts_to_the_declared_types() {
        let target = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
            "s",
            DataType::LargeUtf8,
            true,
        )]));
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
                "s",
                DataType::Utf8,
                true,
            )])),
            vec![Arc::new(StringArray::from(vec!["x"]))],
        )
        .unwrap();
        let got = conform(batch.clone(), &target).unwrap();
        assert_eq!(got.column(0).data_type(), &DataType::LargeUtf8);
        let viewed = Arc::new(with_view_types(&target));
        assert_eq!(viewed.field(0).data_type(), &DataType::Utf8View);
        let element = arrow::datatypes::Field::new("element", DataType::Int32, true)
            .with_metadata(HashMap::from([("PARQUET:field_id".into(), "7".into())]));
        let listed = Schema::new(vec![arrow::datatypes::Field::new(
            "tags",
            DataType::List(Arc::new(element.clone())),
            true,
        )]);
        assert_eq!(
            with_view_types(&listed).field(0).data_type(),
            &DataType::List(Arc::new(element.with_metadata(HashMap::new())))
        );
        let got = conform(batch.clone(), &viewed).unwrap();
        assert_eq!(got.column(0).data_type(), &DataType::Utf8View);
        let two = Arc::new(Schema::new(vec![
            target.field(0).clone(),
            target.field(0).clone().with_name("t"),
        ]));
        assert!(conform(batch, &two).is_err());
    }
}

//! Parquet export files, written by the service (ClickHouse 18.16 has no
//! Parquet output).
//!
//! Rows are gathered column by column into a row group of [`ROW_GROUP`]
//! rows, which is encoded (Snappy) and written when full, so memory stays
//! one row group whatever the export's size. Each column's type is taken
//! from its first row's cell: text becomes `BYTE_ARRAY (UTF8)`, a number
//! `INT64 (INTEGER(64,false))`, all `REQUIRED`; an export without rows gets
//! text columns. Writes are synchronous (the `parquet` crate's writer) on the
//! export's worker task: one row group at a time, a few milliseconds each.

use super::cell::Cell;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::sync::Arc;

/// Rows per row group: a few MB of buffered cells at most.
const ROW_GROUP: usize = 16 * 1024;

enum Column {
    Text(Vec<ByteArray>),
    Int(Vec<i64>),
}

/// A Parquet file being written; its writer starts with the first row
/// group (the schema needs the columns' types).
pub struct ParquetSink {
    file: Option<std::fs::File>,
    writer: Option<SerializedFileWriter<std::fs::File>>,
    names: Vec<&'static str>,
    columns: Vec<Column>,
    rows: usize,
}

impl ParquetSink {
    pub fn new(file: std::fs::File, names: Vec<&'static str>) -> ParquetSink {
        ParquetSink {
            file: Some(file),
            writer: None,
            names,
            columns: Vec::new(),
            rows: 0,
        }
    }

    /// Adds one row; writes a row group when one is full. The bytes written
    /// so far when it did.
    pub fn row(&mut self, cells: &[Cell<'_>]) -> anyhow::Result<Option<u64>> {
        if self.columns.is_empty() {
            self.columns = cells
                .iter()
                .map(|c| match c {
                    Cell::Number(_) => Column::Int(Vec::with_capacity(ROW_GROUP)),
                    _ => Column::Text(Vec::with_capacity(ROW_GROUP)),
                })
                .collect();
        }
        for (i, (column, cell)) in self.columns.iter_mut().zip(cells).enumerate() {
            match (column, cell) {
                (Column::Text(v), Cell::Text(s)) => v.push(ByteArray::from(*s)),
                (Column::Text(v), Cell::Owned(s)) => v.push(ByteArray::from(s.as_str())),
                (Column::Int(v), Cell::Number(n)) => v.push(*n as i64),
                _ => anyhow::bail!("export column {} changed type", self.names[i]),
            }
        }
        self.rows += 1;
        if self.rows < ROW_GROUP {
            return Ok(None);
        }
        self.write_group().map(Some)
    }

    fn schema(&self) -> String {
        let fields: String = self
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| match self.columns.get(i) {
                Some(Column::Int(_)) => format!("REQUIRED INT64 {name} (INTEGER(64,false)); "),
                _ => format!("REQUIRED BYTE_ARRAY {name} (UTF8); "),
            })
            .collect();
        format!("message export {{ {fields}}}")
    }

    fn writer(&mut self) -> anyhow::Result<&mut SerializedFileWriter<std::fs::File>> {
        if self.writer.is_none() {
            let schema = Arc::new(parse_message_type(&self.schema())?);
            let properties = Arc::new(
                WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build(),
            );
            let file = self.file.take().expect("the file until the writer has it");
            self.writer = Some(SerializedFileWriter::new(file, schema, properties)?);
        }
        Ok(self.writer.as_mut().expect("just made"))
    }

    /// Encodes and writes the buffered rows as one row group; the file's
    /// bytes so far.
    fn write_group(&mut self) -> anyhow::Result<u64> {
        // The writer first: its schema reads the columns' types.
        self.writer()?;
        let mut columns = std::mem::take(&mut self.columns);
        let writer = self.writer.as_mut().expect("just made");
        let mut group = writer.next_row_group()?;
        let mut i = 0;
        while let Some(mut column) = group.next_column()? {
            match &mut columns[i] {
                Column::Text(v) => {
                    column.typed::<ByteArrayType>().write_batch(v, None, None)?;
                    v.clear();
                }
                Column::Int(v) => {
                    column.typed::<Int64Type>().write_batch(v, None, None)?;
                    v.clear();
                }
            }
            column.close()?;
            i += 1;
        }
        group.close()?;
        let written = writer.bytes_written() as u64;
        self.columns = columns;
        self.rows = 0;
        Ok(written)
    }

    /// Writes the last row group and the footer, syncs the file; its size.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        if self.rows > 0 {
            self.write_group()?;
        }
        let writer = self.writer()?;
        writer.finish()?;
        let written = writer.bytes_written() as u64;
        writer.inner_mut().sync_all()?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn read(path: &std::path::Path) -> SerializedFileReader<std::fs::File> {
        SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap()
    }

    #[test]
    fn rows_across_row_groups_and_an_empty_file_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.parquet");
        let mut sink = ParquetSink::new(std::fs::File::create(&path).unwrap(), vec!["c", "n"]);
        let n = ROW_GROUP + 5;
        for i in 0..n {
            let text = format!("r{i}");
            sink.row(&[Cell::Owned(text), Cell::Number(i as u64)])
                .unwrap();
        }
        let bytes = sink.finish().unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let reader = read(&path);
        assert_eq!(reader.metadata().num_row_groups(), 2);
        assert_eq!(reader.metadata().file_metadata().num_rows(), n as i64);
        let last = reader.get_row_iter(None).unwrap().last().unwrap().unwrap();
        assert_eq!(
            last.to_string(),
            format!("{{c: \"r{}\", n: {}}}", n - 1, n - 1)
        );

        let empty = dir.path().join("empty.parquet");
        let sink = ParquetSink::new(std::fs::File::create(&empty).unwrap(), vec!["c", "n"]);
        sink.finish().unwrap();
        assert_eq!(read(&empty).metadata().file_metadata().num_rows(), 0);
    }
}

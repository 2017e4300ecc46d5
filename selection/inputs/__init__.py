"""Reading and checking strangers' files: documents, parquet loading, validation, folder layout, atomic writes."""

"""The pipeline's data: its sources found by name (`sources`), their windows on disk, the split
into train, val and test, and training batches."""

"""Publishing: content store, piece maps, the bin layout and index, the TUF repository writer,
keys and rotation (docs/architecture.md; docs/catalog.md)."""

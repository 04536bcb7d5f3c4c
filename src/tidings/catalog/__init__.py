"""Publishing: content store, piece maps, the bin layout and index, the TUF repository writer,
keys and rotation (DESIGN.md §1-§3; docs/catalog.md)."""

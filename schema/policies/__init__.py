"""The sharing policy's admin API: validate, preview, publish, roll back, versions,
diff and explain (DESIGN §4)."""

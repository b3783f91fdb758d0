"""The storage seam: everything that touches a path or a database goes through here. Atomic files and
partitioned folders (files), the raw archive and series store (archive), each stage's run snapshots and
incremental state (snapshots), a run's windows (windows), the model registry (registry), the forecast
store in Parquet and SQL (forecasts), quarantine records (quarantine) and the HTML reports (reports).
The core (forecasting/) never imports it; the tasks read and write through it."""

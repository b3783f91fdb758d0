"""The storage seam: everything that touches a path or a database goes through here. Atomic files and
partitioned folders (files), the model registry (registry), the forecast store in Parquet and SQL
(forecasts), quarantine records (quarantine), and each stage's run snapshots and incremental state
(snapshots). The core (forecasting/) never imports it; the tasks read and write through it."""

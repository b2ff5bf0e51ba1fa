"""The data stage: price sources, the Parquet cache and the threaded download."""

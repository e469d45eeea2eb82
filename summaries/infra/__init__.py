"""Infrastructure adapters, below the models: Valkey (cache, local_cache), the
broker's lanes and task dispatch by name (queues, dispatch), the database's
connections and per-input lock (database), and per-process background
threads (background). The bypasses of a library's public API live apart, in
summaries/bypasses/."""

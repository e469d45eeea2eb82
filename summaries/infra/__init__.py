"""Infrastructure adapters, below the models: Valkey (cache, local_cache), the
broker's lanes and task dispatch by name (queues, dispatch), the database's
connections and per-input lock (database), and the one owner of per-process
state: caches, counters, threads, locks (runtime). The bypasses of a
library's public API live apart, in summaries/bypasses/."""

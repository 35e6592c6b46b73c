"""The constants of Dynamo's ``prometheus_names.rs``, in its source order.

Every Rust ``pub mod`` is a plain class used as a namespace, with the same
constant names and values; nested Rust modules are nested classes
(``frontend_service.status.SUCCESS``). :func:`iter_constants` walks them all in
declaration order and :data:`MODULES` names the top-level ones. This module is
a table, not logic: it is exempt from the package's module-length limit.
"""

from collections.abc import Iterator


class name_prefix:
    """Prefixes that start a metric name (``{prefix}_{name}``)."""

    COMPONENT = "dynamo_component"
    FRONTEND = "dynamo_frontend"
    ROUTER = "dynamo_router"
    KVINDEXER = "dynamo_kvindexer"
    REQUEST_PLANE = "dynamo_request_plane"
    TRANSPORT = "dynamo_transport"
    WORK_HANDLER = "dynamo_work_handler"
    REJECTION = "dynamo_rejection"
    TOKIO = "dynamo_tokio"
    ROUTING_OVERHEAD = "dynamo_routing_overhead"


class labels:
    """Label names: the auto-inserted hierarchy labels and other well-known labels."""

    COMPONENT = "dynamo_component"
    NAMESPACE = "dynamo_namespace"
    ENDPOINT = "dynamo_endpoint"
    DP_RANK = "dp_rank"  # not auto-inserted
    WORKER_ID = "worker_id"
    MODEL = "model"
    MODEL_NAME = "model_name"
    WORKER_TYPE = "worker_type"  # aggregated / prefill / decode / encode
    ROUTER_ID = "router_id"


class component_names:
    """Well-known component names."""

    ROUTER = "router"


class frontend_service:
    """Frontend (HTTP service) metric names, prefixed with ``name_prefix.FRONTEND``."""

    METRICS_PREFIX_ENV = "DYN_METRICS_PREFIX"
    REQUESTS_TOTAL = "requests_total"
    REQUESTS_STARTED_TOTAL = "requests_started_total"
    QUEUED_REQUESTS = "queued_requests"
    INFLIGHT_REQUESTS = "inflight_requests"
    ACTIVE_REQUESTS = "active_requests"
    DISCONNECTED_CLIENTS = "disconnected_clients"
    REQUEST_DURATION_SECONDS = "request_duration_seconds"
    INPUT_SEQUENCE_TOKENS = "input_sequence_tokens"
    OUTPUT_SEQUENCE_TOKENS = "output_sequence_tokens"
    KV_HIT_RATE = "kv_hit_rate"
    KV_TRANSFER_ESTIMATED_LATENCY_SECONDS = "kv_transfer_estimated_latency_seconds"
    SHARED_CACHE_HIT_RATE = "shared_cache_hit_rate"
    SHARED_CACHE_BEYOND_BLOCKS = "shared_cache_beyond_blocks"
    CACHED_TOKENS = "cached_tokens"
    TOKENIZER_LATENCY_MS = "tokenizer_latency_ms"
    OUTPUT_TOKENS_TOTAL = "output_tokens_total"
    TIME_TO_FIRST_TOKEN_SECONDS = "time_to_first_token_seconds"
    INTER_TOKEN_LATENCY_SECONDS = "inter_token_latency_seconds"
    EMBEDDING_LATENCY_SECONDS = "embedding_latency_seconds"
    IMAGES_PER_REQUEST = "images_per_request"
    VIDEOS_PER_REQUEST = "videos_per_request"
    AUDIO_PER_REQUEST = "audio_per_request"
    MODEL_TOTAL_KV_BLOCKS = "model_total_kv_blocks"
    MODEL_MAX_NUM_SEQS = "model_max_num_seqs"
    MODEL_MAX_NUM_BATCHED_TOKENS = "model_max_num_batched_tokens"
    MODEL_CONTEXT_LENGTH = "model_context_length"
    MODEL_KV_CACHE_BLOCK_SIZE = "model_kv_cache_block_size"
    MODEL_MIGRATION_LIMIT = "model_migration_limit"
    MODEL_MIGRATION_TOTAL = "model_migration_total"
    MODEL_MIGRATION_MAX_SEQ_LEN_EXCEEDED_TOTAL = "model_migration_max_seq_len_exceeded_total"
    MODEL_CANCELLATION_TOTAL = "model_cancellation_total"
    MODEL_REJECTION_TOTAL = "model_rejection_total"
    ADMISSION_REJECTION_TOTAL = "admission_rejection_total"
    ADMISSION_GATE_LIMIT = "admission_gate_limit"
    WORKER_ACTIVE_DECODE_BLOCKS = "worker_active_decode_blocks"
    WORKER_ACTIVE_PREFILL_TOKENS = "worker_active_prefill_tokens"
    WORKER_LAST_TIME_TO_FIRST_TOKEN_SECONDS = "worker_last_time_to_first_token_seconds"
    WORKER_LAST_INPUT_SEQUENCE_TOKENS = "worker_last_input_sequence_tokens"
    WORKER_LAST_INTER_TOKEN_LATENCY_SECONDS = "worker_last_inter_token_latency_seconds"
    ROUTER_QUEUE_PENDING_REQUESTS = "router_queue_pending_requests"
    LORA_REPLICA_FACTOR = "lora_replica_factor"
    LORA_IS_ACTIVE = "lora_is_active"
    LORA_ESTIMATED_LOAD = "lora_estimated_load"
    LORA_RAW_ARRIVAL_COUNT = "lora_raw_arrival_count"
    LORA_ACTIVE_REQUESTS = "lora_active_requests"
    LORA_CHURN_LOADS_TOTAL = "lora_churn_loads_total"
    LORA_CHURN_UNLOADS_TOTAL = "lora_churn_unloads_total"
    LORA_OVERFLOW_COUNT = "lora_overflow_count"
    MIGRATION_TYPE_LABEL = "migration_type"
    OPERATION_LABEL = "operation"

    class operation:
        """Values of the ``operation`` label."""

        TOKENIZE = "tokenize"
        DETOKENIZE = "detokenize"

    class migration_type:
        """Values of the ``migration_type`` label."""

        NEW_REQUEST = "new_request"
        ONGOING_REQUEST = "ongoing_request"

    class status:
        """Values of the request ``status`` label."""

        SUCCESS = "success"
        ERROR = "error"

    class request_type:
        """Values of the ``request_type`` label."""

        STREAM = "stream"
        UNARY = "unary"

    class admission_gate:
        """Names of the admission gates that can reject a request."""

        REQUEST_CONCURRENCY = "request_concurrency"
        RUNTIME_TASK = "runtime_task"
        REQUEST_PLANE_CONNECTION = "request_plane_connection"

    class error_type:
        """Values of the ``error_type`` label; ``NONE`` (empty) means no error."""

        NONE = ""
        VALIDATION = "validation"
        NOT_FOUND = "not_found"
        OVERLOAD = "overload"  # HTTP 429 or 529
        UNAVAILABLE = "unavailable"
        CANCELLED = "cancelled"
        RESPONSE_TIMEOUT = "response_timeout"
        INTERNAL = "internal"
        NOT_IMPLEMENTED = "not_implemented"


class work_handler:
    """Per-endpoint work-handler metric names, prefixed with ``name_prefix.WORK_HANDLER``."""

    REQUESTS_TOTAL = "requests_total"
    REQUEST_BYTES_TOTAL = "request_bytes_total"
    RESPONSE_BYTES_TOTAL = "response_bytes_total"
    INFLIGHT_REQUESTS = "inflight_requests"
    REQUEST_DURATION_SECONDS = "request_duration_seconds"
    ERRORS_TOTAL = "errors_total"
    CANCELLATION_TOTAL = "cancellation_total"
    NETWORK_TRANSIT_SECONDS = "network_transit_seconds"
    TIME_TO_FIRST_RESPONSE_SECONDS = "time_to_first_response_seconds"
    QUEUE_DEPTH = "queue_depth"
    QUEUE_CAPACITY = "queue_capacity"
    ENQUEUE_REJECTED_TOTAL = "enqueue_rejected_total"
    PERMIT_WAIT_SECONDS = "permit_wait_seconds"
    POOL_ACTIVE_TASKS = "pool_active_tasks"
    POOL_CAPACITY = "pool_capacity"
    ERROR_TYPE_LABEL = "error_type"

    class error_types:
        """Values of the work handler's ``error_type`` label."""

        DESERIALIZATION = "deserialization"
        INVALID_MESSAGE = "invalid_message"
        RESPONSE_STREAM = "response_stream"
        GENERATE = "generate"
        SERIALIZATION = "serialization"
        PUBLISH_RESPONSE = "publish_response"
        PUBLISH_FINAL = "publish_final"


class task_tracker:
    """Task-tracker metric names."""

    TASKS_ISSUED_TOTAL = "tasks_issued_total"
    TASKS_STARTED_TOTAL = "tasks_started_total"
    TASKS_SUCCESS_TOTAL = "tasks_success_total"
    TASKS_CANCELLED_TOTAL = "tasks_cancelled_total"
    TASKS_FAILED_TOTAL = "tasks_failed_total"
    TASKS_REJECTED_TOTAL = "tasks_rejected_total"


class distributed_runtime:
    """DistributedRuntime metric names."""

    UPTIME_SECONDS = "uptime_seconds"


class kvbm:
    """KV block manager (offload/onboard) metric names."""

    OFFLOAD_BLOCKS_D2H = "offload_blocks_d2h"
    OFFLOAD_BLOCKS_H2D = "offload_blocks_h2d"
    OFFLOAD_BLOCKS_D2D = "offload_blocks_d2d"
    ONBOARD_BLOCKS_H2D = "onboard_blocks_h2d"
    ONBOARD_BLOCKS_D2D = "onboard_blocks_d2d"
    MATCHED_TOKENS = "matched_tokens"
    HOST_CACHE_HIT_RATE = "host_cache_hit_rate"
    DISK_CACHE_HIT_RATE = "disk_cache_hit_rate"
    OBJECT_CACHE_HIT_RATE = "object_cache_hit_rate"
    OFFLOAD_BLOCKS_D2O = "offload_blocks_d2o"
    ONBOARD_BLOCKS_O2D = "onboard_blocks_o2d"
    OFFLOAD_BYTES_OBJECT = "offload_bytes_object"
    ONBOARD_BYTES_OBJECT = "onboard_bytes_object"
    OBJECT_READ_FAILURES = "object_read_failures"
    OBJECT_WRITE_FAILURES = "object_write_failures"


class router_request:
    """Router request metrics: ``router_`` + a frontend_service name, component-prefixed."""

    METRIC_PREFIX = "router_"


class routing_overhead:
    """Routing overhead metric names, combined with ``name_prefix.ROUTER``."""

    BLOCK_HASHING_MS = "overhead_block_hashing_ms"
    INDEXER_FIND_MATCHES_MS = "overhead_indexer_find_matches_ms"
    SEQ_HASHING_MS = "overhead_seq_hashing_ms"
    SCHEDULING_MS = "overhead_scheduling_ms"
    TOTAL_MS = "overhead_total_ms"
    SHARED_CACHE_QUERY_MS = "overhead_shared_cache_query_ms"
    SHARED_CACHE_ERRORS_TOTAL = "shared_cache_errors_total"


class router:
    """KV router metric names, combined with ``name_prefix.COMPONENT``."""

    REQUESTS_TOTAL = "router_requests_total"
    REMOTE_INDEXER_QUERY_FAILURES_TOTAL = "router_remote_indexer_query_failures_total"
    REMOTE_INDEXER_WRITE_FAILURES_TOTAL = "router_remote_indexer_write_failures_total"
    KV_EVENT_SOURCE_MISMATCH_WORKERS = "router_kv_event_source_mismatch_workers"
    TIME_TO_FIRST_TOKEN_SECONDS = "router_time_to_first_token_seconds"
    INTER_TOKEN_LATENCY_SECONDS = "router_inter_token_latency_seconds"
    INPUT_SEQUENCE_TOKENS = "router_input_sequence_tokens"
    OUTPUT_SEQUENCE_TOKENS = "router_output_sequence_tokens"
    KV_HIT_RATE = "router_kv_hit_rate"
    SHARED_CACHE_HIT_RATE = "router_shared_cache_hit_rate"
    SHARED_CACHE_BEYOND_BLOCKS = "router_shared_cache_beyond_blocks"
    WORKER_REGISTERED = "router_worker_registered"


class frontend_perf:
    """Frontend pipeline-stage performance metric names."""

    STAGE_DURATION_SECONDS = "stage_duration_seconds"
    STAGE_REQUESTS = "stage_requests"
    STAGE_PREPROCESS = "preprocess"
    STAGE_ROUTE = "route"
    STAGE_DISPATCH = "dispatch"
    TOKENIZE_SECONDS = "tokenize_seconds"
    TEMPLATE_SECONDS = "template_seconds"
    TOKENIZER_CACHE_HITS_TOTAL = "tokenizer_cache_hits_total"
    TOKENIZER_CACHE_MISSES_TOTAL = "tokenizer_cache_misses_total"
    TOKENIZER_CACHE_CACHED_TOKENS_TOTAL = "tokenizer_cache_cached_tokens_total"
    TOKENIZER_CACHE_UNCACHED_TOKENS_TOTAL = "tokenizer_cache_uncached_tokens_total"
    DETOKENIZE_TOTAL_US = "detokenize_total_us"
    DETOKENIZE_TOKEN_COUNT = "detokenize_token_count"
    EVENT_LOOP_DELAY_SECONDS = "event_loop_delay_seconds"
    EVENT_LOOP_STALL_TOTAL = "event_loop_stall_total"


class tokio_perf:
    """Async-runtime (Tokio) performance metric names, prefixed with ``name_prefix.TOKIO``."""

    WORKER_MEAN_POLL_TIME_NS = "worker_mean_poll_time_ns"
    GLOBAL_QUEUE_DEPTH = "global_queue_depth"
    BUDGET_FORCED_YIELD_TOTAL = "budget_forced_yield_total"
    WORKER_BUSY_RATIO = "worker_busy_ratio"
    WORKER_PARK_COUNT_TOTAL = "worker_park_count_total"
    WORKER_LOCAL_QUEUE_DEPTH = "worker_local_queue_depth"
    WORKER_STEAL_COUNT_TOTAL = "worker_steal_count_total"
    WORKER_OVERFLOW_COUNT_TOTAL = "worker_overflow_count_total"
    BLOCKING_THREADS = "blocking_threads"
    BLOCKING_IDLE_THREADS = "blocking_idle_threads"
    BLOCKING_QUEUE_DEPTH = "blocking_queue_depth"
    ALIVE_TASKS = "alive_tasks"


class kvindexer:
    """KV indexer service metric names, prefixed with ``name_prefix.KVINDEXER``."""

    REQUEST_DURATION_SECONDS = "request_duration_seconds"
    REQUESTS_TOTAL = "requests_total"
    ERRORS_TOTAL = "errors_total"
    MODELS = "models"
    WORKERS = "workers"


class request_plane:
    """Request-plane metric names, prefixed with ``name_prefix.REQUEST_PLANE``."""

    QUEUE_SECONDS = "queue_seconds"
    SEND_SECONDS = "send_seconds"
    ROUNDTRIP_TTFT_SECONDS = "roundtrip_ttft_seconds"
    INFLIGHT_REQUESTS = "inflight_requests"


class transport:
    """Transport metric names, prefixed with ``name_prefix.TRANSPORT``; only nested modules."""

    class tcp:
        """TCP transport metric names."""

        POOL_ACTIVE = "tcp_pool_active"
        POOL_IDLE = "tcp_pool_idle"
        BYTES_SENT_TOTAL = "tcp_bytes_sent_total"
        BYTES_RECEIVED_TOTAL = "tcp_bytes_received_total"
        ERRORS_TOTAL = "tcp_errors_total"
        SERVER_QUEUE_DEPTH = "tcp_server_queue_depth"

    class nats:
        """NATS transport metric names."""

        ERRORS_TOTAL = "nats_errors_total"


class kvrouter:
    """KV router event metric names."""

    KV_CACHE_EVENTS_APPLIED = "kv_cache_events_applied"


class kv_publisher:
    """KV event publisher metric names."""

    ENGINES_DROPPED_EVENTS_TOTAL = "kv_publisher_engines_dropped_events_total"
    ZMQ_EVENTS_TOTAL = "kv_publisher_zmq_events_total"
    ZMQ_FILTERED_EVENTS_TOTAL = "kv_publisher_zmq_filtered_events_total"
    ZMQ_CONVERSION_ISSUES_TOTAL = "kv_publisher_zmq_conversion_issues_total"
    ZMQ_SUSPICIOUS_EVENTS_TOTAL = "kv_publisher_zmq_suspicious_events_total"


class trtllm_additional:
    """Extra TensorRT-LLM engine metric names."""

    NUM_ABORTED_REQUESTS_TOTAL = "trtllm_num_aborted_requests_total"
    REQUEST_TYPE_IMAGE_TOTAL = "trtllm_request_type_image_total"
    REQUEST_TYPE_STRUCTURED_OUTPUT_TOTAL = "trtllm_request_type_structured_output_total"
    KV_TRANSFER_SUCCESS_TOTAL = "trtllm_kv_transfer_success_total"
    KV_TRANSFER_LATENCY_SECONDS = "trtllm_kv_transfer_latency_seconds"
    KV_TRANSFER_BYTES = "trtllm_kv_transfer_bytes"
    KV_TRANSFER_SPEED_GB_S = "trtllm_kv_transfer_speed_gb_s"
    KV_EVENT_BUFFER_CAPACITY = "trtllm_kv_event_buffer_capacity"
    KV_EVENT_DRAIN_BATCH_SIZE = "trtllm_kv_event_drain_batch_size"
    KV_EVENT_ID_GAP_EVENTS_TOTAL = "trtllm_kv_event_id_gap_events_total"


class kvstats:
    """Worker KV cache statistics metric names."""

    TOTAL_BLOCKS = "total_blocks"
    GPU_CACHE_USAGE_PERCENT = "gpu_cache_usage_percent"


class model_info:
    """Model information metric names."""

    LOAD_TIME_SECONDS = "model_load_time_seconds"


# Source order of prometheus_names.rs (the generated Dynamo Python module sorts them instead).
MODULES = (
    "name_prefix",
    "labels",
    "component_names",
    "frontend_service",
    "work_handler",
    "task_tracker",
    "distributed_runtime",
    "kvbm",
    "router_request",
    "routing_overhead",
    "router",
    "frontend_perf",
    "tokio_perf",
    "kvindexer",
    "request_plane",
    "transport",
    "kvrouter",
    "kv_publisher",
    "trtllm_additional",
    "kvstats",
    "model_info",
)

# The label keys the hierarchy sets itself; users may not supply them.
AUTO_LABEL_NAMES = frozenset(
    (labels.NAMESPACE, labels.COMPONENT, labels.ENDPOINT, labels.WORKER_ID)
)


def _iter_namespace(path: str, namespace: type) -> Iterator[tuple[str, str]]:
    # vars() keeps class-body definition order, so this is source order.
    for key, value in vars(namespace).items():
        if key.startswith("_"):
            continue
        if isinstance(value, type):
            yield from _iter_namespace(f"{path}.{key}", value)
        elif isinstance(value, str):
            yield f"{path}.{key}", value


def iter_constants() -> Iterator[tuple[str, str]]:
    """Yield ``(dotted_path, value)`` for every name constant, in declaration order.

    Paths are relative to the package, e.g. ``("frontend_service.status.SUCCESS", "success")``.
    """
    namespaces = globals()
    for module in MODULES:
        yield from _iter_namespace(module, namespaces[module])

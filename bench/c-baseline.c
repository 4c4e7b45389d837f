/*
 * The broker's ceiling for one publisher and one consumer, measured with librabbitmq and as little
 * client code as possible. Sources/AMQPBench does the same work through the Swift AMQP layer:
 *
 * - one queue (classic or quorum) declared fresh for the run;
 * - a consumer thread on its own connection: prefetch P, manual acks, one basic.ack per message;
 * - a publisher thread on its own connection: confirm mode, persistent messages of B bytes to the
 *   default exchange, pipelined with at most W publishes unconfirmed;
 * - each body starts with the CLOCK_MONOTONIC nanoseconds of its publish, so the consumer measures
 *   publish-to-delivery latency;
 * - throughput is messages over the time from the first publish to the last delivery; CPU is
 *   user+system time of the whole process over that span (getrusage).
 *
 * Prints one JSON object on stdout.
 *
 *   c-baseline --url amqp://u:p@host:port/vhost --queue NAME --queue-type classic|quorum
 *              [--messages N] [--window W] [--prefetch P] [--body-bytes B] [--rate R]
 *
 * --rate R publishes at R messages per second instead of as fast as the window allows: with --window 1
 * it measures one hop's latency beside other load, not the broker's ceiling.
 *
 * --stages N (with --window 1 and --rate R) measures instead the broker operations a message takes through N
 * sharded services in a row, with no service code in them: the latency floor of request→ring (N = 2, the
 * Router then the Notifier) on this broker under the load beside it. Each stage is a thread that, one
 * message at a time:
 *   1. takes it from its input queue (quorum; the first one is QUEUE.in, then QUEUE.stage.K);
 *   2. appends it to its journal (stream QUEUE.journal.K), waits for the confirm, and reads it back from
 *      the journal (a consumer from offset "next");
 *   3. publishes it to the next stage's input queue, or to QUEUE.out (classic) after the last stage;
 *   4. acknowledges its input.
 * The queues are declared at the start and deleted at the end. It prints {"stages":N,"hop":{...},"chain":{...}},
 * each with the count and the p50, p99 and max milliseconds: the first hop (publish → delivery to stage 1), and
 * publish → delivery from QUEUE.out.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* As the Swift layer's default, so both sides service heartbeats alike. */
static const int heartbeat_seconds = 10;

struct options {
    struct amqp_connection_info url;
    const char *queue;
    const char *queue_type;
    long messages;
    int window;
    int prefetch;
    int body_bytes;
    long rate;
    int stages;
};

struct readiness;

struct consumer_state {
    const struct options *options;
    struct readiness *readiness;
    uint64_t *latencies_ns;
    uint64_t last_delivery_ns;
};

static _Noreturn void fail(const char *what, const char *detail) {
    fprintf(stderr, "c-baseline: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void check_reply(amqp_rpc_reply_t reply, const char *what) {
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return;
    case AMQP_RESPONSE_NONE:
        fail(what, "missing RPC reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fail(what, amqp_error_string2(reply.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *close = reply.reply.decoded;
            fprintf(stderr, "c-baseline: %s: connection closed %u %.*s\n", what, close->reply_code,
                    (int)close->reply_text.len, (char *)close->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *close = reply.reply.decoded;
            fprintf(stderr, "c-baseline: %s: channel closed %u %.*s\n", what, close->reply_code,
                    (int)close->reply_text.len, (char *)close->reply_text.bytes);
        } else {
            fprintf(stderr, "c-baseline: %s: server exception, method 0x%08x\n", what, reply.reply.id);
        }
        exit(1);
    }
}

static void check_status(int status, const char *what) {
    if (status < 0) fail(what, amqp_error_string2(status));
}

static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static uint64_t process_cpu_ns(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return ((uint64_t)usage.ru_utime.tv_sec + (uint64_t)usage.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)usage.ru_utime.tv_usec + (uint64_t)usage.ru_stime.tv_usec) * 1000u;
}

static amqp_connection_state_t open_connection(const struct options *options) {
    amqp_connection_state_t connection = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(connection);
    if (!socket) fail("creating socket", NULL);
    check_status(amqp_socket_open(socket, options->url.host, options->url.port), "connecting");
    check_reply(amqp_login(connection, options->url.vhost, 0, 131072, heartbeat_seconds, AMQP_SASL_METHOD_PLAIN,
                           options->url.user, options->url.password),
                "logging in");
    amqp_channel_open(connection, 1);
    check_reply(amqp_get_rpc_reply(connection), "opening channel");
    return connection;
}

static void close_connection(amqp_connection_state_t connection) {
    amqp_channel_close(connection, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(connection, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(connection);
}

static void declare_queue(const struct options *options) {
    amqp_connection_state_t connection = open_connection(options);
    amqp_table_entry_t type = {.key = amqp_cstring_bytes("x-queue-type"),
                               .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                         .value.bytes = amqp_cstring_bytes(options->queue_type)}};
    amqp_table_t arguments = {.num_entries = 1, .entries = &type};
    amqp_queue_declare(connection, 1, amqp_cstring_bytes(options->queue), 0, 1, 0, 0, arguments);
    check_reply(amqp_get_rpc_reply(connection), "declaring queue");
    close_connection(connection);
}

static void delete_queue(const struct options *options) {
    amqp_connection_state_t connection = open_connection(options);
    amqp_queue_delete(connection, 1, amqp_cstring_bytes(options->queue), 0, 0);
    check_reply(amqp_get_rpc_reply(connection), "deleting queue");
    close_connection(connection);
}

/* A copy of the options for one queue of a chain: QUEUE.suffix of the given type. */
static struct options chain_queue(const struct options *options, const char *suffix, const char *type) {
    struct options queue = *options;
    size_t length = strlen(options->queue) + strlen(suffix) + 2;
    char *name = malloc(length);
    snprintf(name, length, "%s.%s", options->queue, suffix);
    queue.queue = name;
    queue.queue_type = type;
    return queue;
}

/* Counts threads that are subscribed, so that nothing is published before every one is. */
struct readiness {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int ready;
};

static void mark_ready(struct readiness *readiness) {
    pthread_mutex_lock(&readiness->lock);
    readiness->ready++;
    pthread_cond_broadcast(&readiness->changed);
    pthread_mutex_unlock(&readiness->lock);
}

static void wait_ready(struct readiness *readiness, int count) {
    pthread_mutex_lock(&readiness->lock);
    while (readiness->ready < count) pthread_cond_wait(&readiness->changed, &readiness->lock);
    pthread_mutex_unlock(&readiness->lock);
}

static void subscribe(amqp_connection_state_t connection, const char *queue, int prefetch, amqp_table_t arguments) {
    amqp_basic_qos(connection, 1, 0, (uint16_t)prefetch, 0);
    check_reply(amqp_get_rpc_reply(connection), "setting prefetch");
    amqp_basic_consume(connection, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, arguments);
    check_reply(amqp_get_rpc_reply(connection), "subscribing");
}

static void *consume(void *argument) {
    struct consumer_state *state = argument;
    const struct options *options = state->options;
    amqp_connection_state_t connection = open_connection(options);
    subscribe(connection, options->queue, options->prefetch, amqp_empty_table);
    mark_ready(state->readiness);

    struct timeval idle_limit = {.tv_sec = 60};
    for (long received = 0; received < options->messages; received++) {
        amqp_envelope_t envelope;
        amqp_maybe_release_buffers(connection);
        check_reply(amqp_consume_message(connection, &envelope, &idle_limit, 0), "consuming");
        uint64_t now = monotonic_ns();
        uint64_t published;
        if (envelope.message.body.len < sizeof published) fail("consuming", "body too short");
        memcpy(&published, envelope.message.body.bytes, sizeof published);
        state->latencies_ns[received] = now - published;
        check_status(amqp_basic_ack(connection, 1, envelope.delivery_tag, 0), "acking");
        amqp_destroy_envelope(&envelope);
    }
    state->last_delivery_ns = monotonic_ns();
    close_connection(connection);
    return NULL;
}

/* Reads one frame (blocking) and returns how many publishes it confirms. */
static long read_confirms(amqp_connection_state_t connection, uint64_t *confirmed_up_to) {
    amqp_frame_t frame;
    check_status(amqp_simple_wait_frame(connection, &frame), "waiting for confirms");
    if (frame.frame_type != AMQP_FRAME_METHOD) return 0;
    switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *ack = frame.payload.method.decoded;
        uint64_t up_to = ack->delivery_tag;
        long count = ack->multiple ? (long)(up_to - *confirmed_up_to) : 1;
        if (up_to > *confirmed_up_to) *confirmed_up_to = up_to;
        return count;
    }
    case AMQP_BASIC_NACK_METHOD:
        fail("publishing", "the broker refused a message (basic.nack)");
    case AMQP_CHANNEL_CLOSE_METHOD:
        fail("publishing", "the broker closed the channel");
    case AMQP_CONNECTION_CLOSE_METHOD:
        fail("publishing", "the broker closed the connection");
    }
    return 0;
}

static amqp_connection_state_t open_publisher(const struct options *options) {
    amqp_connection_state_t connection = open_connection(options);
    amqp_confirm_select(connection, 1);
    check_reply(amqp_get_rpc_reply(connection), "enabling confirms");
    return connection;
}

static void publish(amqp_connection_state_t connection, const struct options *options) {
    amqp_basic_properties_t properties = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                          .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    uint8_t *body = calloc(1, (size_t)options->body_bytes);
    amqp_bytes_t body_bytes = {.len = (size_t)options->body_bytes, .bytes = body};
    amqp_bytes_t queue = amqp_cstring_bytes(options->queue);

    long outstanding = 0;
    uint64_t confirmed_up_to = 0;
    uint64_t start = monotonic_ns();
    for (long sent = 0; sent < options->messages; sent++) {
        if (options->rate) {
            uint64_t due = start + (uint64_t)sent * 1000000000u / (uint64_t)options->rate;
            struct timespec until = {.tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {}
        }
        while (outstanding >= options->window) outstanding -= read_confirms(connection, &confirmed_up_to);
        uint64_t now = monotonic_ns();
        memcpy(body, &now, sizeof now);
        check_status(amqp_basic_publish(connection, 1, amqp_empty_bytes, queue, 0, 0, &properties, body_bytes),
                     "publishing");
        outstanding++;
        amqp_maybe_release_buffers(connection);
    }
    while (outstanding > 0) outstanding -= read_confirms(connection, &confirmed_up_to);
    free(body);
    close_connection(connection);
}

struct stage_state {
    const struct options *options;
    struct readiness *readiness;
    struct options input, journal, output;
    /* The first stage's: publish → delivery from its input queue. */
    uint64_t *hop_ns;
};

static void *relay(void *argument) {
    struct stage_state *stage = argument;
    const struct options *options = stage->options;
    amqp_connection_state_t input = open_connection(options);
    subscribe(input, stage->input.queue, 1, amqp_empty_table);
    amqp_table_entry_t offset = {.key = amqp_cstring_bytes("x-stream-offset"),
                                 .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("next")}};
    amqp_connection_state_t reader = open_connection(options);
    subscribe(reader, stage->journal.queue, 64, (amqp_table_t){.num_entries = 1, .entries = &offset});
    /* Channel 1 appends to the journal, confirmed; channel 2 publishes onward unconfirmed: the next stage
       gets the message when the broker delivers it, which a confirm would not hasten. */
    amqp_connection_state_t output = open_publisher(options);
    amqp_channel_open(output, 2);
    check_reply(amqp_get_rpc_reply(output), "opening channel");
    mark_ready(stage->readiness);

    amqp_basic_properties_t persistent = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG,
                                          .delivery_mode = AMQP_DELIVERY_PERSISTENT};
    struct timeval idle_limit = {.tv_sec = 60};
    uint64_t confirmed_up_to = 0;
    for (long relayed = 0; relayed < options->messages; relayed++) {
        amqp_envelope_t envelope, record;
        amqp_maybe_release_buffers(input);
        check_reply(amqp_consume_message(input, &envelope, &idle_limit, 0), "taking a message");
        if (stage->hop_ns) {
            uint64_t published;
            if (envelope.message.body.len < sizeof published) fail("taking a message", "body too short");
            memcpy(&published, envelope.message.body.bytes, sizeof published);
            stage->hop_ns[relayed] = monotonic_ns() - published;
        }
        check_status(amqp_basic_publish(output, 1, amqp_empty_bytes, amqp_cstring_bytes(stage->journal.queue), 0, 0,
                                        &persistent, envelope.message.body),
                     "appending to the journal");
        while (read_confirms(output, &confirmed_up_to) == 0) {}
        amqp_maybe_release_buffers(reader);
        check_reply(amqp_consume_message(reader, &record, &idle_limit, 0), "reading the journal back");
        check_status(amqp_basic_ack(reader, 1, record.delivery_tag, 0), "acking the journal record");
        amqp_destroy_envelope(&record);
        check_status(amqp_basic_publish(output, 2, amqp_empty_bytes, amqp_cstring_bytes(stage->output.queue), 0, 0,
                                        &persistent, envelope.message.body),
                     "publishing onward");
        check_status(amqp_basic_ack(input, 1, envelope.delivery_tag, 0), "acking");
        amqp_destroy_envelope(&envelope);
        amqp_maybe_release_buffers(output);
    }
    close_connection(reader);
    close_connection(input);
    amqp_channel_close(output, 2, AMQP_REPLY_SUCCESS);
    close_connection(output);
    return NULL;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static uint64_t percentile(const uint64_t *sorted, long count, double fraction) {
    long rank = (long)(fraction * (double)count + 0.999999);
    if (rank < 1) rank = 1;
    return sorted[rank - 1];
}

static long parse_positive(const char *text, const char *name) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end || value <= 0) fail("expected a positive number for", name);
    return value;
}

static struct options parse_options(int argc, char **argv) {
    struct options options = {.messages = 200000, .window = 256, .prefetch = 256, .body_bytes = 300};
    char *url = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *name = argv[i], *value = argv[i + 1];
        if (!strcmp(name, "--url")) url = strdup(value);
        else if (!strcmp(name, "--queue")) options.queue = value;
        else if (!strcmp(name, "--queue-type")) options.queue_type = value;
        else if (!strcmp(name, "--messages")) options.messages = parse_positive(value, name);
        else if (!strcmp(name, "--window")) options.window = (int)parse_positive(value, name);
        else if (!strcmp(name, "--prefetch")) options.prefetch = (int)parse_positive(value, name);
        else if (!strcmp(name, "--body-bytes")) options.body_bytes = (int)parse_positive(value, name);
        else if (!strcmp(name, "--rate")) options.rate = parse_positive(value, name);
        else if (!strcmp(name, "--stages")) options.stages = (int)parse_positive(value, name);
        else fail("unknown option", name);
    }
    if (argc % 2 == 0) fail("every option takes a value", NULL);
    if (!url || !options.queue) fail("--url and --queue are required", NULL);
    if (!options.stages && !options.queue_type) fail("--queue-type is required without --stages", NULL);
    if (options.stages && (options.window != 1 || !options.rate)) fail("--stages needs --window 1 and --rate", NULL);
    if (options.prefetch > 65535) fail("--prefetch is at most", "65535");
    if (options.body_bytes < 8) fail("--body-bytes is at least", "8");
    amqp_default_connection_info(&options.url);
    if (amqp_parse_url(url, &options.url) != AMQP_STATUS_OK) fail("cannot parse --url", url);
    return options;
}

/* Prints "name":{"count":..,"p50Milliseconds":..,"p99Milliseconds":..,"maxMilliseconds":..} of `count` values,
   which it sorts: the form of the load generator's latency summaries. */
static void print_latencies(const char *name, uint64_t *values, long count) {
    qsort(values, (size_t)count, sizeof(uint64_t), compare_u64);
    printf("\"%s\":{\"count\":%ld,\"p50Milliseconds\":%.4f,\"p99Milliseconds\":%.4f,\"maxMilliseconds\":%.4f}",
           name, count, (double)percentile(values, count, 0.50) / 1e6, (double)percentile(values, count, 0.99) / 1e6,
           (double)values[count - 1] / 1e6);
}

static void start_consumer(pthread_t *thread, struct consumer_state *state) {
    state->latencies_ns = calloc((size_t)state->options->messages, sizeof(uint64_t));
    if (pthread_create(thread, NULL, consume, state)) fail("starting the consumer thread", NULL);
}

/* --stages: the chain described at the top. */
static int run_chain(const struct options *options) {
    struct readiness readiness = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    struct options first = chain_queue(options, "in", "quorum"), last = chain_queue(options, "out", "classic");
    struct stage_state *stages = calloc((size_t)options->stages, sizeof *stages);
    for (int index = 0; index < options->stages; index++) {
        struct stage_state *stage = &stages[index];
        char name[32];
        stage->options = options;
        stage->readiness = &readiness;
        if (index == 0) {
            stage->input = first;
        } else {
            snprintf(name, sizeof name, "stage.%d", index + 1);
            stage->input = chain_queue(options, name, "quorum");
        }
        snprintf(name, sizeof name, "journal.%d", index + 1);
        stage->journal = chain_queue(options, name, "stream");
        declare_queue(&stage->input);
        declare_queue(&stage->journal);
    }
    for (int index = 0; index < options->stages; index++) {
        stages[index].output = index + 1 < options->stages ? stages[index + 1].input : last;
    }
    declare_queue(&last);
    stages[0].hop_ns = calloc((size_t)options->messages, sizeof(uint64_t));

    struct consumer_state state = {.options = &last, .readiness = &readiness};
    pthread_t consumer;
    start_consumer(&consumer, &state);
    pthread_t *threads = calloc((size_t)options->stages, sizeof *threads);
    for (int index = 0; index < options->stages; index++) {
        if (pthread_create(&threads[index], NULL, relay, &stages[index])) fail("starting a stage thread", NULL);
    }
    wait_ready(&readiness, options->stages + 1);
    publish(open_publisher(&first), &first);
    pthread_join(consumer, NULL);
    for (int index = 0; index < options->stages; index++) pthread_join(threads[index], NULL);
    /* Nothing of the chain stays on the broker to weigh on what the benchmark measures next. */
    for (int index = 0; index < options->stages; index++) {
        delete_queue(&stages[index].input);
        delete_queue(&stages[index].journal);
    }
    delete_queue(&last);

    printf("{\"client\":\"c\",\"stages\":%d,", options->stages);
    print_latencies("hop", stages[0].hop_ns, options->messages);
    printf(",");
    print_latencies("chain", state.latencies_ns, options->messages);
    printf("}\n");
    return 0;
}

int main(int argc, char **argv) {
    struct options options = parse_options(argc, argv);
    if (options.stages) return run_chain(&options);
    declare_queue(&options);

    struct readiness readiness = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    struct consumer_state state = {.options = &options, .readiness = &readiness};
    pthread_t consumer;
    start_consumer(&consumer, &state);
    wait_ready(&readiness, 1);

    amqp_connection_state_t publisher = open_publisher(&options);
    uint64_t cpu_start = process_cpu_ns();
    uint64_t start = monotonic_ns();
    publish(publisher, &options);
    pthread_join(consumer, NULL);
    uint64_t cpu_used = process_cpu_ns() - cpu_start;
    double seconds = (double)(state.last_delivery_ns - start) / 1e9;

    qsort(state.latencies_ns, (size_t)options.messages, sizeof(uint64_t), compare_u64);
    printf("{\"client\":\"c\",\"queueType\":\"%s\",\"messages\":%ld,\"seconds\":%.3f,\"messagesPerSecond\":%.0f,"
           "\"latencyP50Microseconds\":%.1f,\"latencyP99Microseconds\":%.1f,\"latencyMaxMicroseconds\":%.1f,"
           "\"cpuMicrosecondsPerMessage\":%.2f}\n",
           options.queue_type, options.messages, seconds, (double)options.messages / seconds,
           (double)percentile(state.latencies_ns, options.messages, 0.50) / 1e3,
           (double)percentile(state.latencies_ns, options.messages, 0.99) / 1e3,
           (double)state.latencies_ns[options.messages - 1] / 1e3,
           (double)cpu_used / 1e3 / (double)options.messages);
    free(state.latencies_ns);
    return 0;
}

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
};

struct consumer_state {
    const struct options *options;
    pthread_mutex_t lock;
    pthread_cond_t ready_changed;
    int ready;
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

static void *consume(void *argument) {
    struct consumer_state *state = argument;
    const struct options *options = state->options;
    amqp_connection_state_t connection = open_connection(options);
    amqp_basic_qos(connection, 1, 0, (uint16_t)options->prefetch, 0);
    check_reply(amqp_get_rpc_reply(connection), "setting prefetch");
    amqp_basic_consume(connection, 1, amqp_cstring_bytes(options->queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    check_reply(amqp_get_rpc_reply(connection), "subscribing");

    pthread_mutex_lock(&state->lock);
    state->ready = 1;
    pthread_cond_signal(&state->ready_changed);
    pthread_mutex_unlock(&state->lock);

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
        else fail("unknown option", name);
    }
    if (argc % 2 == 0) fail("every option takes a value", NULL);
    if (!url || !options.queue || !options.queue_type) fail("--url, --queue and --queue-type are required", NULL);
    if (options.prefetch > 65535) fail("--prefetch is at most", "65535");
    if (options.body_bytes < 8) fail("--body-bytes is at least", "8");
    amqp_default_connection_info(&options.url);
    if (amqp_parse_url(url, &options.url) != AMQP_STATUS_OK) fail("cannot parse --url", url);
    return options;
}

int main(int argc, char **argv) {
    struct options options = parse_options(argc, argv);
    declare_queue(&options);

    struct consumer_state state = {.options = &options,
                                   .lock = PTHREAD_MUTEX_INITIALIZER,
                                   .ready_changed = PTHREAD_COND_INITIALIZER,
                                   .latencies_ns = calloc((size_t)options.messages, sizeof(uint64_t))};
    pthread_t consumer;
    if (pthread_create(&consumer, NULL, consume, &state)) fail("starting the consumer thread", NULL);
    pthread_mutex_lock(&state.lock);
    while (!state.ready) pthread_cond_wait(&state.ready_changed, &state.lock);
    pthread_mutex_unlock(&state.lock);

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

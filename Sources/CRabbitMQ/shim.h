#ifndef SWITCHBOARD_CRABBITMQ_SHIM_H
#define SWITCHBOARD_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <amqp_framing.h>
#include <sys/eventfd.h>

/* amqp_login is variadic; Swift cannot call it. The PLAIN mechanism takes user and password. */
static inline amqp_rpc_reply_t switchboard_amqp_login_plain(amqp_connection_state_t state,
                                                            const char *vhost,
                                                            int channel_max,
                                                            int frame_max,
                                                            int heartbeat,
                                                            amqp_table_t *client_properties,
                                                            const char *user,
                                                            const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat,
                                      client_properties, AMQP_SASL_METHOD_PLAIN, user, password);
}

/* A non-blocking eventfd that wakes a connection's I/O thread out of poll(2). The EFD_ flags are
   macros Swift does not import. */
static inline int switchboard_wakeup_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

/* librabbitmq trusts only the CA file it is given; without one, the system's certificate authorities
   (OpenSSL's default locations, or SSL_CERT_FILE / SSL_CERT_DIR) should be trusted, as any TLS client
   does. Declared here rather than through <openssl/ssl.h>, which would bring all of OpenSSL into Swift. */
typedef struct ssl_ctx_st SSL_CTX;
int SSL_CTX_set_default_verify_paths(SSL_CTX *ctx);

static inline int switchboard_ssl_socket_trust_system_authorities(amqp_socket_t *socket) {
    return SSL_CTX_set_default_verify_paths((SSL_CTX *)amqp_ssl_socket_get_context(socket));
}

#endif

/* The tiniest tenant, in C: answers 200 to any request, one connection at a time.
 *
 * bench/fleet_scale.py runs 3,000 of them on one machine, where tiny.py's 4.8 MB each
 * (PSS) would not fit beside the other work; this one is a few hundred KB. */
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    const char *port = getenv("PORT");
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    char buffer[4096];
    if (port == NULL || s < 0) return 2;
    a.sin_port = htons((unsigned short)atoi(port));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) return 1;
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        if (read(c, buffer, sizeof buffer) >= 0) (void)!write(c, ok, sizeof ok - 1);
        close(c);
    }
}

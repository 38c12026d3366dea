/* `nitro --host SOCKET ...`: the CLI as a client of nitrod's API (issue 5).
 *
 *   instances run|list|describe|stop|start|reboot|terminate|console ...
 *   volumes create|list|describe|attach|detach|delete ...
 *   host attest [--nonce N]
 * Human tables by default, the API's JSON with --json. An API error is printed as
 * "nitro: MESSAGE" (exit 1); bad arguments exit 2.
 */
#ifndef NITRO_CLI_CLIENT_H
#define NITRO_CLI_CLIENT_H

int cmd_client(const char *socket, int argc, char **argv);

#endif

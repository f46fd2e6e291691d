/* A C target whose structs are named through typedefs and whose entries hang off a table of
 * pointers, as redis keeps its keys (server.db -> dict -> dictEntry **ht_table[2] -> dictEntry ->
 * next): the global `server` (an anonymous struct, by typedef) -> `db *dbs` (an array of DBS db)
 * -> `table *keys` -> `entry **buckets[2]` (BUCKETS pointers) -> entry -> next. Each entry's value
 * is a `void *` block, which no type names. `server.index` is a node ending in a flexible array
 * (`unsigned char data[]`) that holds NODE_CHILDREN pointers, as redis's raxNode holds its
 * children: they stay reachable when the node is typed. It records, with write(2) only:
 *     entries N     entries in db 0's table (chained: more entries than buckets)
 *     buckets N     pointers in the bucket table
 * then "done", and waits. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DBS 4
#define BUCKETS 512
#define ENTRIES 3000

typedef struct entry {
	long key;
	struct entry *next;
	void *value;
} entry;

typedef struct table {
	entry **buckets[2]; /* [1]: the table being rehashed into, NULL here */
	unsigned long size, used;
} table;

typedef struct db {
	table *keys;
	long id;
} db;

typedef db database; /* a typedef of a typedef */

typedef struct node {
	unsigned count;
	unsigned char data[]; /* count pointers, unaligned by the header: as raxNode */
} node;
#define NODE_CHILDREN 6

typedef struct {
	database *dbs;
	int db_count;
	node *index;
} server_state;

server_state server;

__attribute__((noinline)) static void fill(void)
{
	server.db_count = DBS;
	server.dbs = calloc(DBS, sizeof *server.dbs);
	for (int i = 0; i < DBS; i++) {
		server.dbs[i].id = i;
		server.dbs[i].keys = calloc(1, sizeof(table));
	}
	server.index = malloc(sizeof(node) + 4 + NODE_CHILDREN * sizeof(void *));
	server.index->count = NODE_CHILDREN;
	for (int i = 0; i < NODE_CHILDREN; i++) {
		void *child = malloc(24);
		memcpy(server.index->data + 4 + i * sizeof child, &child, sizeof child);
	}
	table *keys = server.dbs[0].keys;
	keys->size = BUCKETS;
	keys->buckets[0] = calloc(BUCKETS, sizeof(entry *));
	for (long k = 0; k < ENTRIES; k++) {
		entry *e = calloc(1, sizeof *e);
		e->key = k;
		e->value = malloc(40);
		e->next = keys->buckets[0][k % BUCKETS];
		keys->buckets[0][k % BUCKETS] = e;
		keys->used++;
	}
}

/* Overwrites the stack below the caller, where dead frames still hold old pointers. */
__attribute__((noinline)) static void scrub_stack(void)
{
	char area[64 << 10];
	explicit_bzero(area, sizeof area);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: typedef_table RECORD\n");
		return 2;
	}
	fill();
	scrub_stack();
	char text[128];
	int length = snprintf(text, sizeof text, "entries %lu\nbuckets %d\ndone\n",
			      server.dbs[0].keys->used, BUCKETS);
	char partial[4096];
	snprintf(partial, sizeof partial, "%s.partial", argv[1]);
	int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, (size_t)length) != length || close(fd) != 0 ||
	    rename(partial, argv[1]) != 0)
		return 1;
	for (;;)
		pause();
}

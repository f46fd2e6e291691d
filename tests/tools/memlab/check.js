// Reads heapsnap's DevTools exports with memlab, for tests/e2e/test_export_devtools.py; prints
// one JSON document on stdout.
//
//   node check.js load FILE TYPE
//     {"format": [problems with the file as DevTools' loader would read it],
//      "node_count", "edge_count", "roots": [names of the root's children],
//      "types": {NAME: {"count", "self_size"}} (object and native nodes, as memlab parsed them),
//      "retainers": {"ROOT -> EDGE -> ... -> TYPE": count}: memlab's path to the roots of each
//      node named TYPE, "ids": [the ids of the nodes named TYPE]}
//   node check.js leaks BASELINE TARGET FINAL
//     {"traces": [[{"name", "type", "leaked"} along each trace find-leaks reports]]}: memlab's three-snapshot
//     filter (new in TARGET, alive in FINAL), with every object or native node a candidate
//     (memlab's own rules look for browser leaks: detached DOM elements, React fibers)
'use strict';
const fs = require('fs');
const core = require('@memlab/core');

// What DevTools' HeapSnapshotLoader and memlab's parser assume of the document, checked on its
// plain JSON: the arrays' lengths, 32-bit numbers, every to_node a node's first field, element
// edges numbered and the others naming a string, ids unique, node 0 the root, strings last.
function formatProblems(file) {
  const text = fs.readFileSync(file, 'utf8');
  const doc = JSON.parse(text);
  const problems = [];
  const meta = doc.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const edgeFields = meta.edge_fields.length;
  const edgeTypes = meta.edge_types[0];
  const keys = Object.keys(doc);
  if (keys[keys.length - 1] !== 'strings') problems.push(`strings is not last: ${keys}`);
  if (doc.nodes.length !== doc.snapshot.node_count * nodeFields)
    problems.push(`nodes has ${doc.nodes.length} numbers for ${doc.snapshot.node_count} nodes`);
  if (doc.edges.length !== doc.snapshot.edge_count * edgeFields)
    problems.push(`edges has ${doc.edges.length} numbers for ${doc.snapshot.edge_count} edges`);
  for (const array of ['nodes', 'edges'])
    for (const value of doc[array])
      if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
        problems.push(`${array} holds ${value}, not a 32-bit unsigned integer`);
        break;
      }
  const ids = new Set();
  let edgeSum = 0;
  for (let n = 0; n < doc.nodes.length; n += nodeFields) {
    const id = doc.nodes[n + meta.node_fields.indexOf('id')];
    if (ids.has(id)) problems.push(`id ${id} given twice`);
    ids.add(id);
    if (doc.nodes[n + 1] >= doc.strings.length) problems.push(`node ${n} names no string`);
    edgeSum += doc.nodes[n + meta.node_fields.indexOf('edge_count')];
  }
  if (edgeSum !== doc.snapshot.edge_count)
    problems.push(`the nodes' edge counts sum to ${edgeSum}, not edge_count ${doc.snapshot.edge_count}`);
  if (doc.nodes[2] !== 1) problems.push(`node 0 has id ${doc.nodes[2]}, not the root's 1`);
  for (let e = 0; e < doc.edges.length; e += edgeFields) {
    const [type, name, to] = doc.edges.slice(e, e + 3);
    if (to % nodeFields !== 0 || to >= doc.nodes.length) {
      problems.push(`edge ${e / edgeFields} goes to ${to}, not a node`);
      break;
    }
    const numbered = ['element', 'hidden'].includes(edgeTypes[type]);
    if (type >= edgeTypes.length || (!numbered && name >= doc.strings.length)) {
      problems.push(`edge ${e / edgeFields} has type ${type} and name ${name}`);
      break;
    }
  }
  return problems;
}

function step(edge) {
  const name = edge.name_or_index;
  return edge.type === 'element' ? '[*]' : String(name);
}

async function load(file, type) {
  const result = {format: formatProblems(file)};
  const snapshot = await core.utils.getSnapshotFromFile(file, {buildNodeIdIndex: true});
  result.node_count = snapshot.nodes.length;
  result.edge_count = snapshot.edges.length;
  result.roots = [];
  snapshot.nodes.get(0).references.forEach(edge => result.roots.push(edge.toNode.name));
  result.types = {};
  snapshot.nodes.forEach(node => {
    if (!['object', 'native', 'array'].includes(node.type)) return;
    const entry = (result.types[node.name] = result.types[node.name] || {count: 0, self_size: 0});
    entry.count++;
    entry.self_size += node.self_size;
  });
  // memlab's own shortest paths from its GC roots, as find-leaks reports them
  const finder = new core.TraceFinder();
  finder.annotateShortestPaths(snapshot);
  result.retainers = {};
  result.ids = [];
  snapshot.nodes.forEach(node => {
    if (node.name !== type) return;
    result.ids.push(node.id);
    const steps = [];
    let path = finder.getPathToGCRoots(snapshot, node);
    for (; path; path = path.next) {
      if (path.edge) steps.push(`${path.node.name} -${step(path.edge)}->`);
      else steps.push(path.node.name);
    }
    const key = steps.join(' ');
    result.retainers[key] = (result.retainers[key] || 0) + 1;
  });
  return result;
}

async function leaks(baseline, target, final) {
  const {findLeaksBySnapshotFilePaths} = require('@memlab/api');
  core.config.externalLeakFilter = {
    leakFilter: node => node.type === 'object' || node.type === 'native',
  };
  const workDir = fs.mkdtempSync(require('path').join(require('os').tmpdir(), 'memlab-'));
  const traces = await findLeaksBySnapshotFilePaths(baseline, target, final, {workDir});
  fs.rmSync(workDir, {recursive: true, force: true});
  // a serialized trace is an object whose keys are its steps, "3:   --334 (element)--->
  // [__main__.Connection](object) @1310978727 ... $memLabTag:leaked": kept as {name, type, leaked}
  const names = traces.map(trace => Object.keys(trace)
    .map(key => key.match(/^\d+: .*?\[(.*)\]\(([a-z ]+)\) @\d+(.*)$/s))
    .filter(match => match)
    .map(([, name, type, tags]) => ({name, type, leaked: tags.includes('$memLabTag:leaked')})));
  return {traces: names};
}

(async () => {
  const [command, ...args] = process.argv.slice(2);
  core.config.muteConsole = true;
  const result = command === 'load' ? await load(args[0], args[1])
    : command === 'leaks' ? await leaks(args[0], args[1], args[2])
    : null;
  if (result === null) {
    process.stderr.write('usage: node check.js load FILE TYPE | leaks BASELINE TARGET FINAL\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})().catch(error => {
  process.stderr.write(`check.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});

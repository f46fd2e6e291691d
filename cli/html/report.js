/* The script of heapsnap's HTML reports (embedded in each page by scripts/embed_text): it reads
 * the report's JSON from #report-data (the document `--format json` prints, values already masked)
 * and draws the page: header, sortable tables with bars, retaining paths as SVG graphs from the
 * roots to the type, an icicle of retained bytes, unreachable cycles as rings, and the footer.
 * Every text from the report goes in by textContent: nothing read from memory becomes markup. */
"use strict";
(function () {
	const SVG = "http://www.w3.org/2000/svg";
	const CHAR_WIDTH = 7.3; /* 12px monospace */
	const data = JSON.parse(document.getElementById("report-data").textContent);
	const kind = document.body.dataset.kind;
	const main = document.getElementById("report");
	let graphCount = 0;

	/* ---- building elements ---- */

	function append(parent, children) {
		for (const child of children) {
			if (child === null || child === undefined || child === false)
				continue;
			parent.appendChild(typeof child === "string" || typeof child === "number"
				? document.createTextNode(String(child)) : child);
		}
		return parent;
	}

	function element(tag, attributes, ...children) {
		const node = document.createElement(tag);
		for (const [name, value] of Object.entries(attributes || {}))
			if (value !== null && value !== undefined)
				node.setAttribute(name, String(value));
		return append(node, children);
	}

	function svgElement(tag, attributes, ...children) {
		const node = document.createElementNS(SVG, tag);
		for (const [name, value] of Object.entries(attributes || {}))
			if (value !== null && value !== undefined)
				node.setAttribute(name, String(value));
		return append(node, children);
	}

	/* ---- numbers as the text report writes them (cli_format_count, cli_format_bytes) ---- */

	function formatCount(value) {
		return String(Math.abs(Math.trunc(value))).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
	}

	function formatBytes(value) {
		value = Math.abs(value);
		if (value < 1024)
			return value + " B";
		const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
		let scaled = value / 1024, unit = 0;
		while (scaled >= 1024 && unit + 1 < units.length) {
			scaled /= 1024;
			unit++;
		}
		return printfFixed(scaled, scaled < 10 ? 2 : scaled < 100 ? 1 : 0) + " " + units[unit];
	}

	/* printf's "%.Nf": as toFixed, but a value exactly halfway rounds to the even digit (31.25
	 * KiB is "31.2 KiB" in the text report, where toFixed says 31.3) */
	function printfFixed(value, digits) {
		const exact = value.toFixed(60); /* every digit of a double below 2^53 */
		const point = exact.indexOf(".");
		const rest = exact.slice(point + 1 + digits);
		if (!/^50*$/.test(rest))
			return value.toFixed(digits);
		const kept = exact.slice(0, digits ? point + 1 + digits : point);
		if (Number(kept[kept.length - 1]) % 2 === 0)
			return kept;
		return (Number(kept) + Math.pow(10, -digits)).toFixed(digits);
	}

	function sign(value) {
		return value < 0 ? "-" : value > 0 ? "+" : "";
	}

	const formats = {
		count: formatCount,
		bytes: formatBytes,
		signedCount: (value) => sign(value) + formatCount(value),
		signedBytes: (value) => sign(value) + formatBytes(value),
		text: (value) => String(value),
	};

	function percent(part, whole) {
		return whole ? Math.round(100 * part / whole) + "%" : "0%";
	}

	function captured(iso) {
		return iso ? iso.replace("T", " ").replace("Z", " UTC") : "unknown";
	}

	function duration(fromIso, toIso) {
		const seconds = Math.max(0, (Date.parse(toIso) - Date.parse(fromIso)) / 1000);
		if (!isFinite(seconds))
			return "unknown time";
		if (seconds < 60)
			return seconds.toFixed(0) + "s";
		if (seconds >= 3600)
			return Math.floor(seconds / 3600) + "h" + String(Math.floor(seconds / 60) % 60).padStart(2, "0") + "m";
		return Math.floor(seconds / 60) + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
	}

	function runtimes(found) {
		const parts = [];
		if (found && found.python)
			parts.push("CPython " + found.python);
		if (found && found.glibc)
			parts.push("glibc " + found.glibc);
		return parts.length ? parts.join(", ") : "runtime versions unknown";
	}

	function basename(path) {
		return path ? path.slice(path.lastIndexOf("/") + 1) : "unknown";
	}

	function hue(text) {
		let hash = 2166136261;
		for (let i = 0; i < text.length; i++)
			hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
		return (hash >>> 0) % 360;
	}

	/* ---- sortable tables with bars ----
	 * columns: [{key, title, value(row), format, bar: "bytes"|"count", numeric}]; the rows keep
	 * their given order until a header is clicked: descending first (ascending for text), again
	 * for the other way. Past LONG_TABLE rows, the rest are in the page but hidden until asked
	 * for (a summary may list thousands of roots). */
	const LONG_TABLE = 100;
	function sortableTable(name, columns, rows, rowAttributes) {
		const maxima = {};
		for (const column of columns)
			if (column.bar)
				maxima[column.key] = Math.max(0, ...rows.map((row) => Math.abs(column.value(row))));
		const header = element("tr");
		const body = element("tbody");
		const table = element("table", {class: "sortable", "data-table": name},
			element("thead", null, header), body);
		for (const column of columns) {
			const cell = element("th", {class: column.numeric ? "num" : null, "data-key": column.key,
				scope: "col"}, element("button", {type: "button", title: "sort by " + column.title},
				column.title));
			header.appendChild(cell);
		}
		const rendered = rows.map((row, index) => {
			const line = element("tr", Object.assign({"data-index": index}, rowAttributes ? rowAttributes(row) : {}));
			for (const column of columns) {
				const value = column.value(row);
				const text = (formats[column.format] || formats.text)(value);
				const cell = element("td", {class: column.numeric ? "num" : column.className || null,
					"data-key": column.key, "data-value": value});
				if (column.link && column.link(row))
					cell.appendChild(element("a", {href: column.link(row)}, text));
				else if (column.bar) {
					const width = maxima[column.key] ? 100 * Math.abs(value) / maxima[column.key] : 0;
					cell.appendChild(element("span", {class: "cell"},
						element("span", {class: "value"}, text),
						element("span", {class: "bar-track", "aria-hidden": "true"},
							element("span", {class: "bar " + column.bar, style: "width:" + width.toFixed(1) + "%"}))));
				} else
					cell.appendChild(document.createTextNode(text));
				if (column.grow && value > 0)
					cell.classList.add("grow");
				line.appendChild(cell);
			}
			body.appendChild(line);
			return {row, line, index};
		});
		let expanded = rows.length <= LONG_TABLE;
		const showFirst = () => {
			[...body.rows].forEach((line, position) => { line.hidden = !expanded && position >= LONG_TABLE; });
		};
		showFirst();
		header.addEventListener("click", (event) => {
			const button = event.target.closest("button");
			if (!button)
				return;
			const cell = button.parentElement;
			const column = columns.find((c) => c.key === cell.dataset.key);
			const current = cell.getAttribute("aria-sort");
			const descending = current ? current === "ascending" : column.numeric;
			for (const other of header.children)
				other.removeAttribute("aria-sort");
			cell.setAttribute("aria-sort", descending ? "descending" : "ascending");
			const ordered = rendered.slice().sort((a, b) => {
				const x = column.value(a.row), y = column.value(b.row);
				const order = column.numeric ? x - y : String(x).localeCompare(String(y));
				return (descending ? -order : order) || a.index - b.index;
			});
			for (const item of ordered)
				body.appendChild(item.line);
			showFirst();
		});
		if (expanded)
			return table;
		const more = element("button", {type: "button", class: "more", "data-table": name},
			"Show all " + formatCount(rows.length) + " rows (" + formatCount(rows.length - LONG_TABLE) + " more)");
		more.addEventListener("click", () => {
			expanded = true;
			showFirst();
			more.remove();
		});
		return element("div", {class: "long-table"}, table, more);
	}

	/* ---- retaining paths as a graph: the roots on the left, the type on the right ----
	 * The shapes are merged from the type backwards while their steps agree (a tree whose root
	 * is the type), so each node is one step of every shape sharing the rest of the way. The
	 * edges carry the objects and the retained bytes of the shapes through them; each shape's
	 * signature is written under its first step. */
	function pathGraph(retainers, typeName) {
		const id = ++graphCount;
		const depth = Math.max(...retainers.map((r) => r.path.length));
		const nodes = new Map(), edges = new Map();
		for (const retainer of retainers) {
			const steps = retainer.path;
			let previous = null;
			for (let i = 0; i < steps.length; i++) {
				const key = JSON.stringify(steps.slice(i));
				let node = nodes.get(key);
				if (!node) {
					node = {key, label: steps[i], column: depth - steps.length + i, children: [],
						signatures: [], root: false, target: i === steps.length - 1};
					nodes.set(key, node);
				}
				if (i === 0) {
					node.root = true;
					node.signatures.push(retainer.signature);
				}
				if (previous) {
					const edgeKey = previous.key + "\n" + key;
					let edge = edges.get(edgeKey);
					if (!edge) {
						edge = {from: previous, to: node, count: 0, retained: 0};
						edges.set(edgeKey, edge);
						node.children.push(previous);
					}
					edge.count += retainer.count;
					edge.retained += retainer.retained_bytes;
				}
				previous = node;
			}
		}
		const labelOf = (edge) => formatCount(edge.count) + " \u00b7 " + formatBytes(edge.retained);
		/* the columns' widths, and the gaps wide enough for the edges' labels */
		const columnWidth = new Array(depth).fill(0), gap = new Array(depth).fill(60);
		for (const node of nodes.values()) {
			node.width = Math.max(node.label.length, ...node.signatures.map((s) => s.length + 2)) * CHAR_WIDTH + 16;
			columnWidth[node.column] = Math.max(columnWidth[node.column], node.width);
		}
		for (const edge of edges.values())
			gap[edge.from.column] = Math.max(gap[edge.from.column], labelOf(edge).length * 6.6 + 30);
		const columnX = [];
		for (let c = 0, x = 8; c < depth; c++) {
			columnX.push(x);
			x += columnWidth[c] + gap[c];
		}
		const width = columnX[depth - 1] + columnWidth[depth - 1] + 8;
		/* rows: each first step a row of its own, every other node between its children */
		const rowHeight = 58;
		let nextRow = 0;
		const place = (node) => {
			if (node.row !== undefined)
				return node.row;
			node.row = node.children.length
				? node.children.map(place).reduce((a, b) => a + b, 0) / node.children.length
				: nextRow++;
			return node.row;
		};
		const targets = [...nodes.values()].filter((node) => node.target);
		for (const target of targets)
			place(target);
		for (const node of nodes.values())
			place(node);
		const height = nextRow * rowHeight + 12;
		const y = (node) => 14 + node.row * rowHeight;
		const x = (node) => columnX[node.column] + (columnWidth[node.column] - node.width) / 2;
		const marker = "arrow-" + id;
		const svg = svgElement("svg", {class: "path-graph", viewBox: `0 0 ${width.toFixed(0)} ${height}`,
			width: width.toFixed(0), height, role: "img", "data-type": typeName},
		svgElement("title", null, "What keeps the " + typeName + " objects alive"),
		svgElement("defs", null, svgElement("marker", {id: marker, viewBox: "0 0 10 10", refX: 10,
			refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse"},
		svgElement("path", {d: "M 0 0 L 10 5 L 0 10 z", class: "arrow"}))));
		for (const edge of edges.values()) {
			const x1 = x(edge.from) + edge.from.width, y1 = y(edge.from) + 12;
			const x2 = x(edge.to), y2 = y(edge.to) + 12;
			const middle = (x1 + x2) / 2;
			const label = labelOf(edge);
			svg.appendChild(svgElement("g", {class: "edge", "data-from": edge.from.label,
				"data-to": edge.to.label, "data-count": edge.count, "data-retained": edge.retained},
			svgElement("path", {d: `M ${x1} ${y1} C ${middle} ${y1}, ${middle} ${y2}, ${x2 - 1} ${y2}`,
				"marker-end": `url(#${marker})`}),
			svgElement("text", {class: "halo", x: middle, y: (y1 + y2) / 2 - 5, "text-anchor": "middle"}, label)));
		}
		for (const node of nodes.values()) {
			const classes = "node" + (node.root ? " root" : "") + (node.target ? " target" : "");
			const group = svgElement("g", {class: classes, "data-label": node.label},
				svgElement("rect", {x: x(node), y: y(node), width: node.width, height: 24, rx: 4}),
				svgElement("text", {class: "step", x: x(node) + node.width / 2, y: y(node) + 16,
					"text-anchor": "middle"}, node.label));
			node.signatures.forEach((signature, k) => group.appendChild(svgElement("text",
				{class: "signature", x: x(node) + node.width / 2, y: y(node) + 37 + 12 * k,
					"text-anchor": "middle"}, "[" + signature + "]")));
			svg.appendChild(group);
		}
		return element("div", {class: "graph"}, svg);
	}

	function shapeList(retainers, ofCount) {
		return element("ul", {class: "shapes"}, ...retainers.map((r) => element("li",
			{"data-signature": r.signature},
			element("code", null, "[" + r.signature + "]"), " " + formatCount(r.count) + " (" +
			percent(r.count, ofCount) + "), " + formatBytes(r.retained_bytes) + " retained: ",
			element("span", {class: "path-text"}, r.path.join(" -> ")))));
	}

	/* ---- an icicle of retained bytes: roots above, the types they keep below ---- */
	function icicle(entries) {
		/* entries: [{root, type, bytes}] */
		const roots = new Map();
		for (const entry of entries) {
			if (!entry.bytes)
				continue;
			let root = roots.get(entry.root);
			if (!root) {
				root = {name: entry.root, bytes: 0, types: []};
				roots.set(entry.root, root);
			}
			root.bytes += entry.bytes;
			root.types.push(entry);
		}
		const ordered = [...roots.values()].sort((a, b) => b.bytes - a.bytes);
		const total = ordered.reduce((sum, root) => sum + root.bytes, 0);
		if (!total)
			return null;
		const width = 1000, band = 34;
		const svg = svgElement("svg", {class: "icicle", viewBox: `0 0 ${width} ${2 * band + 2}`,
			width, height: 2 * band + 2, role: "img"},
		svgElement("title", null, "Retained bytes by root, then by type"));
		const cell = (x, y, w, name, bytes, level) => {
			const fits = Math.floor((w - 8) / 6.7);
			const text = name + " " + formatBytes(bytes);
			const shown = fits >= text.length ? text : fits >= 4 ? text.slice(0, fits - 1) + "\u2026" : "";
			const colour = `hsl(${hue(name)} 55% ${level ? 72 : 62}%)`;
			return svgElement("g", {class: "cell", "data-name": name, "data-bytes": bytes},
				svgElement("title", null, name + ": " + formatBytes(bytes) + " retained"),
				svgElement("rect", {x, y, width: Math.max(w, 0.5), height: band - 2, fill: colour}),
				svgElement("text", {x: x + 4, y: y + band / 2 + 3, style: "fill:#111"}, shown));
		};
		let x = 0;
		for (const root of ordered) {
			const w = width * root.bytes / total;
			svg.appendChild(cell(x, 0, w, root.name, root.bytes, 0));
			let inner = x;
			for (const type of root.types.sort((a, b) => b.bytes - a.bytes)) {
				const tw = w * type.bytes / root.bytes;
				svg.appendChild(cell(inner, band, tw, type.type, type.bytes, 1));
				inner += tw;
			}
			x += w;
		}
		return element("div", {class: "graph"}, svg);
	}

	function icicleOf(rows, typeKey) {
		const entries = [];
		for (const row of rows)
			for (const r of row.retainers || [])
				entries.push({root: r.path[0], type: row[typeKey], bytes: r.retained_bytes});
		const picture = icicle(entries);
		if (!picture)
			return [];
		return [element("h2", {id: "icicle"}, "Retained bytes, root \u2192 type"), picture,
			element("p", {class: "note"}, "Each root's width is the bytes its shapes retain; " +
				"below it, the types it keeps. A type's retained bytes include the objects " +
				"it holds, so two types of one root may count the same bytes.")];
	}

	/* ---- cycles as rings ---- */
	function ring(cycle) {
		let steps = cycle.shape.slice();
		const last = steps[steps.length - 1];
		/* the last step is the object the ring started from: drawn as the way back */
		if (steps.length > 1 && (steps[0] === last || steps[0].startsWith(last + ".") ||
			steps[0].startsWith(last + "[")))
			steps = steps.slice(0, -1);
		const longest = Math.max(...steps.map((s) => s.length));
		const radius = 70, width = Math.max(320, 2 * radius + longest * CHAR_WIDTH + 40), height = 2 * radius + 90;
		const cx = width / 2, cy = radius + 30;
		const svg = svgElement("svg", {class: "ring", viewBox: `0 0 ${width.toFixed(0)} ${height}`,
			width: width.toFixed(0), height, role: "img", "data-signature": cycle.signature},
		svgElement("title", null, "Cycle " + cycle.shape.join(" -> ")),
		svgElement("circle", {class: "ring-track", cx, cy, r: radius}));
		const angle = (i) => -Math.PI / 2 + 2 * Math.PI * i / steps.length;
		for (let i = 0; i < steps.length; i++) {
			/* an arrowhead halfway to the next step, along the ring (clockwise) */
			const a = (angle(i) + angle(i + 1)) / 2;
			const px = cx + radius * Math.cos(a), py = cy + radius * Math.sin(a);
			const degrees = a * 180 / Math.PI + 90;
			svg.appendChild(svgElement("path", {class: "arrow", d: "M -6 -5 L 6 0 L -6 5 z",
				transform: `translate(${px.toFixed(1)} ${py.toFixed(1)}) rotate(${degrees.toFixed(1)})`}));
		}
		steps.forEach((step, i) => {
			const px = cx + radius * Math.cos(angle(i)), py = cy + radius * Math.sin(angle(i));
			const w = step.length * CHAR_WIDTH + 14;
			svg.appendChild(svgElement("g", {class: "node", "data-label": step},
				svgElement("rect", {x: px - w / 2, y: py - 12, width: w, height: 24, rx: 12}),
				svgElement("text", {class: "step", x: px, y: py + 4, "text-anchor": "middle"}, step)));
		});
		svg.appendChild(svgElement("text", {class: "caption", x: cx, y: cy - 2, "text-anchor": "middle"},
			formatCount(cycle.count) + " cycles"));
		svg.appendChild(svgElement("text", {class: "caption", x: cx, y: cy + 13, "text-anchor": "middle"},
			formatBytes(cycle.bytes)));
		return element("figure", {"data-signature": cycle.signature}, svg,
			element("figcaption", null, element("code", null, "[" + cycle.signature + "]"), " " +
				formatCount(cycle.count) + " cycles, " + formatCount(cycle.objects) + " objects, " +
				formatBytes(cycle.bytes) + ": ", element("span", {class: "path-text"}, cycle.shape.join(" -> "))));
	}

	function unreachableSection(unreachable, word, countKey, bytesKey) {
		const parts = [element("h2", {id: "unreachable"}, "Unreachable from every root" + (word ? ", " + word : "")),
			element("p", null, formatCount(unreachable[countKey]) + " objects, " + formatBytes(unreachable[bytesKey]) +
				(unreachable[countKey] ? " (" + (data.python || (data.after && data.after.runtimes.python)
					? "Python objects among them are garbage waiting for the cyclic collector"
					: "leaked: no pointer to them remains, nothing can free them") + ")." : "."))];
		if (unreachable.by_type && unreachable.by_type.length)
			parts.push(sortableTable("unreachable", [
				{key: "type", title: "type", value: (r) => r.type, className: "type"},
				{key: "count", title: "objects", value: (r) => r.count, format: "count", numeric: true, bar: "count"},
				{key: "bytes", title: "bytes", value: (r) => r.bytes, format: "bytes", numeric: true, bar: "bytes"},
			], unreachable.by_type, (r) => ({"data-type": r.type})));
		const garbage = (unreachable.python_garbage_by_generation || []).filter((g) => g.objects);
		if (garbage.length)
			parts.push(element("p", {class: "note"}, "Python garbage by collector generation: " +
				garbage.map((g) => (g.generation === null ? "in no generation" : "generation " + g.generation) +
					" " + formatCount(g.objects) + " objects, " + formatBytes(g.bytes)).join("; ") + "."));
		if (unreachable.cycles && unreachable.cycles.length) {
			parts.push(element("h3", null, "Cycles, by shape"));
			parts.push(element("div", {class: "rings"}, ...unreachable.cycles.map(ring)));
		}
		return parts;
	}

	function warningsSection(warnings) {
		if (!warnings || !warnings.length)
			return [];
		return [element("div", {class: "alert", id: "warnings"}, element("strong", null, "Warnings"),
			element("ul", null, ...warnings.map((w) => element("li", null, w))))];
	}

	/* the memory no walker reads: one snapshot's ({bytes, largest_mapping, largest_bytes}) or
	   how it changed ({before, after, delta}); nothing when neither it nor its change reaches
	   1 MiB (as the text report: a few pages of a library's own are no missing heap) */
	function unseenNote(unseen) {
		const said = 1 << 20;
		if (!unseen || !(unseen.bytes >= said || unseen.before >= said || unseen.after >= said ||
			Math.abs(unseen.delta || 0) >= said))
			return [];
		const words = unseen.bytes !== undefined
			? formatBytes(unseen.bytes) + ", " + formatBytes(unseen.largest_bytes) + " of it in the mapping at 0x" +
				Number(unseen.largest_mapping).toString(16)
			: formatBytes(unseen.before) + " \u2192 " + formatBytes(unseen.after) + " (" + formats.signedBytes(unseen.delta) + ")";
		return [element("p", {class: "alert", id: "unseen"}, element("strong", null, "Memory no walker reads: "),
			words + "; what it holds is not in this report.")];
	}

	function damageNotes(label, snapshot) {
		const notes = [];
		const damage = snapshot.heap_damage;
		if (damage && damage.corrupt_spots)
			notes.push(element("p", {class: "alert"}, label + "'s heap is damaged: " +
				formatCount(damage.corrupt_spots) + " corrupt spot" + (damage.corrupt_spots === 1 ? "" : "s") +
				(damage.first_address !== null ? " at 0x" + Number(damage.first_address).toString(16) : "") +
				", " + formatBytes(damage.bytes_not_walked) + " not walked (see the warnings)."));
		const python = snapshot.python_damaged;
		if (python) {
			const kinds = Object.entries(python).filter(([, n]) => n);
			if (kinds.length)
				notes.push(element("p", {class: "alert"}, "Damaged Python objects in " + label + ": " +
					kinds.map(([k, n]) => formatCount(n) + " " + k.replace(/_/g, " ")).join(", ") + " (see the warnings)."));
		}
		return notes;
	}

	/* ---- heapdiff ---- */
	function renderDiff() {
		const three = data.mode === "three";
		const word = three ? "left behind" : "new";
		const lines = [[three ? "baseline" : "before", data.before, true]];
		if (data.target)
			lines.push(["target", data.target, false]);
		lines.push([three ? "final" : "after", data.after, true]);
		const after = data.after;
		document.title = "heapdiff: pid " + after.pid + " " + (after.program || basename(after.exe));
		const snapshots = element("table", {class: "snapshots"}, element("thead", null, element("tr", null,
			element("th", null, "snapshot"), element("th", null, "file"), element("th", null, "captured"),
			element("th", {class: "num"}, "heap"), element("th", {class: "num"}, "objects"))));
		const body = element("tbody");
		snapshots.appendChild(body);
		for (const [label, snapshot, totals] of lines)
			body.appendChild(element("tr", {"data-snapshot": label}, element("td", null, label),
				element("td", {class: "mono"}, snapshot.file), element("td", null, captured(snapshot.captured_at)),
				element("td", {class: "num"}, totals ? formatBytes(snapshot.live_bytes) : ""),
				element("td", {class: "num"}, totals ? formatCount(snapshot.live_objects) : "")));
		const bytesChange = after.live_bytes - data.before.live_bytes;
		const countChange = after.live_objects - data.before.live_objects;
		body.appendChild(element("tr", {"data-snapshot": "change"}, element("td", null, "change"), element("td"),
			element("td", null, "in " + duration(data.before.captured_at, after.captured_at)),
			element("td", {class: "num grow"}, formats.signedBytes(bytesChange)),
			element("td", {class: "num grow"}, formats.signedCount(countChange))));
		append(main, [element("header", null,
			element("h1", null, "heapdiff: pid " + after.pid + " ", element("code", null, after.program || basename(after.exe)),
				" (" + runtimes(after.runtimes) + ")"), snapshots),
		...unseenNote(data.unseen),
		...lines.flatMap(([label, snapshot]) => damageNotes(label, snapshot)),
		...warningsSection(data.warnings)]);

		/* the grown types */
		const grown = data.grown;
		main.appendChild(element("h2", {id: "grown"}, three
			? "Left behind: objects new in TARGET and still allocated in FINAL"
			: "Grown types: objects new in AFTER and still allocated"));
		const pathsOf = (row) => row.retainers && row.retainers.length ? "#paths-" + grown.indexOf(row) : null;
		const columns = [{key: "type", title: "type", value: (r) => r.type, className: "type", link: pathsOf}];
		if (three)
			columns.push(
				{key: "new", title: "left", value: (r) => r.new, format: "count", numeric: true, bar: "count"},
				{key: "new_in_target", title: "new in burst", value: (r) => r.new_in_target, format: "count", numeric: true},
				{key: "new_bytes", title: "bytes", value: (r) => r.new_bytes, format: "bytes", numeric: true, bar: "bytes"},
				{key: "count_after", title: "count final", value: (r) => r.count_after, format: "count", numeric: true});
		else
			columns.push(
				{key: "new", title: "new", value: (r) => r.new, format: "count", numeric: true},
				{key: "freed", title: "freed", value: (r) => r.freed, format: "count", numeric: true},
				{key: "delta_count", title: "delta", value: (r) => r.delta_count, format: "signedCount", numeric: true, bar: "count", grow: true},
				{key: "delta_bytes", title: "bytes \u0394", value: (r) => r.delta_bytes, format: "signedBytes", numeric: true, bar: "bytes"},
				{key: "count_after", title: "count after", value: (r) => r.count_after, format: "count", numeric: true});
		columns.push({key: "new_retained_bytes", title: "retained by " + word, value: (r) => r.new_retained_bytes,
			format: "bytes", numeric: true});
		main.appendChild(grown.length
			? sortableTable("grown", columns, grown, (r) => ({"data-type": r.type}))
			: element("p", null, data.unseen && data.unseen.delta >= (1 << 20)
				? "None in the memory walked (memory no walker reads grew: see above)."
				: "None."));

		if (data.grown_containers && data.grown_containers.length) {
			main.appendChild(element("h2", {id: "containers"}, "Containers that lived through and grew"));
			main.appendChild(sortableTable("containers", [
				{key: "path", title: "container", value: (r) => r.path ? r.path.slice(0, -1).join(" -> ") : "(no root reaches it)", className: "type"},
				{key: "type", title: "type", value: (r) => r.type || "?", className: "type"},
				{key: "items_before", title: "items before", value: (r) => r.items_before, format: "count", numeric: true},
				{key: "items_after", title: "items after", value: (r) => r.items_after, format: "count", numeric: true},
				{key: "delta", title: "delta", value: (r) => r.items_after - r.items_before, format: "signedCount", numeric: true, bar: "count", grow: true},
			], data.grown_containers));
		}

		if (data.sites && data.sites.length) {
			main.appendChild(element("h2", {id: "sites"}, "Untyped " + word + " allocations by the site that made them"));
			main.appendChild(sortableTable("sites", [
				{key: "new", title: "count", value: (r) => r.new, format: "count", numeric: true, bar: "count"},
				{key: "new_bytes", title: "bytes", value: (r) => r.new_bytes, format: "bytes", numeric: true, bar: "bytes"},
				{key: "site", title: "site", value: (r) => r.site || r.function || "?", className: "type"},
			], data.sites));
		}

		/* what keeps them alive */
		const withPaths = grown.filter((row) => row.retainers && row.retainers.length);
		if (withPaths.length) {
			main.appendChild(element("h2", {id: "paths"}, "What keeps the " + word + " objects alive"));
			main.appendChild(element("p", {class: "note"}, "Shortest paths from a root, by shape: the roots on the left, " +
				"the type on the right; each edge says how many objects take it and the bytes they retain."));
			withPaths.forEach((row, k) => {
				main.appendChild(element("section", {class: "type-paths", id: "paths-" + grown.indexOf(row), "data-type": row.type},
					element("h3", null, "#" + (k + 1) + "  " + formatCount(row.new) + " " + word + " ",
						element("code", null, row.type), ", " + formatBytes(row.new_retained_bytes) + " retained"),
					pathGraph(row.retainers, row.type), shapeList(row.retainers, row.new),
					row.values ? element("p", {class: "note"}, "values: " + row.values.map((v) => JSON.stringify(v)).join(", ")) : null));
			});
			append(main, icicleOf(withPaths, "type"));
		}

		append(main, unreachableSection(data.unreachable, word, "new_count", "new_bytes"));

		const footer = element("footer", null, element("p", null, "heapdiff " + data.tool_version + " \u00b7 schema " + data.schema));
		for (const [label, snapshot] of lines)
			footer.appendChild(element("p", {"data-snapshot": label}, label + " " + snapshot.file + ": pid " + snapshot.pid +
				", captured " + captured(snapshot.captured_at) + ", exe " + (snapshot.exe || "unknown") +
				", build-id " + (snapshot.build_id || "unknown") + ", " + runtimes(snapshot.runtimes)));
		if (data.forced)
			footer.appendChild(element("p", null, "compared with --force: not shown to be one process, by type only"));
		main.appendChild(footer);
	}

	/* ---- heapsnap summary ---- */
	function renderSummary() {
		document.title = "heapsnap summary: pid " + data.pid + " " + (data.program || basename(data.exe));
		const heap = data.heap || {};
		const lines = [["allocator", (heap.allocator || "unknown") + (heap.found_with ? " (found with " + heap.found_with + ")" : "")],
			["live", formatCount(heap.live_count) + " allocations, " + formatBytes(heap.live_bytes)],
			["free", formatCount(heap.free_count) + " chunks, " + formatBytes(heap.free_bytes) + " (top " + formatBytes(heap.top_bytes) + ")"],
			["fragmentation", (100 * (heap.fragmentation || 0)).toFixed(1) + "%"]];
		if (data.python)
			lines.push(["Python objects", formatCount(data.python.objects) + " (" + formatCount(data.python.gc_tracked) + " tracked by the collector)"]);
		append(main, [element("header", null,
			element("h1", null, "heapsnap summary: pid " + data.pid + " ", element("code", null, data.program || basename(data.exe)),
				" (" + runtimes(data.runtimes) + ")"),
			element("table", {class: "totals"}, element("tbody", null, ...lines.map(([k, v]) =>
				element("tr", null, element("th", {scope: "row"}, k), element("td", null, v)))))),
		...unseenNote(heap.unseen),
		...damageNotes("the snapshot", {heap_damage: heap.heap_damage, python_damaged: data.python && data.python.damaged}),
		...warningsSection(data.warnings)]);

		if (heap.arenas && heap.arenas.length) {
			main.appendChild(element("h2", {id: "arenas"}, "Arenas"));
			main.appendChild(sortableTable("arenas", [
				{key: "kind", title: "arena", value: (r) => r.kind + (r.address !== undefined ? " 0x" + Number(r.address).toString(16) : ""), className: "type"},
				{key: "system_bytes", title: "system", value: (r) => r.system_bytes, format: "bytes", numeric: true},
				{key: "live_count", title: "live", value: (r) => r.live_count, format: "count", numeric: true},
				{key: "live_bytes", title: "live bytes", value: (r) => r.live_bytes, format: "bytes", numeric: true, bar: "bytes"},
				{key: "free_count", title: "free", value: (r) => r.free_count, format: "count", numeric: true},
				{key: "free_bytes", title: "free bytes", value: (r) => r.free_bytes, format: "bytes", numeric: true},
			], heap.arenas));
		}

		const types = data.types || [];
		main.appendChild(element("h2", {id: "types"}, "Live allocations by type"));
		const pathsOf = (row) => row.retainers && row.retainers.length ? "#paths-" + types.indexOf(row) : null;
		main.appendChild(types.length ? sortableTable("types", [
			{key: "type", title: "type", value: (r) => r.type, className: "type", link: pathsOf},
			{key: "count", title: "count", value: (r) => r.count, format: "count", numeric: true, bar: "count"},
			{key: "bytes", title: "bytes", value: (r) => r.bytes, format: "bytes", numeric: true, bar: "bytes"},
			{key: "retained_bytes", title: "retained", value: (r) => r.retained_bytes, format: "bytes", numeric: true},
		], types, (r) => ({"data-type": r.type})) : element("p", null, "None."));

		const withPaths = types.filter((row) => row.retainers && row.retainers.length);
		if (withPaths.length) {
			main.appendChild(element("h2", {id: "paths"}, "What keeps the largest types alive"));
			withPaths.forEach((row, k) => {
				main.appendChild(element("section", {class: "type-paths", id: "paths-" + types.indexOf(row), "data-type": row.type},
					element("h3", null, "#" + (k + 1) + "  " + formatCount(row.count) + " ", element("code", null, row.type),
						", " + formatBytes(row.retained_bytes) + " retained"),
					pathGraph(row.retainers, row.type), shapeList(row.retainers, row.count)));
			});
			append(main, icicleOf(withPaths, "type"));
		}

		if (data.roots && data.roots.length) {
			main.appendChild(element("h2", {id: "roots"}, "Roots"));
			main.appendChild(sortableTable("roots", [
				{key: "root", title: "root", value: (r) => r.root, className: "type"},
				{key: "retained_bytes", title: "retained", value: (r) => r.retained_bytes, format: "bytes", numeric: true, bar: "bytes"},
				{key: "holds_bytes", title: "holds", value: (r) => r.holds_bytes, format: "bytes", numeric: true},
				{key: "objects", title: "objects", value: (r) => r.objects, format: "count", numeric: true},
			], data.roots));
		}
		if (data.unreachable)
			append(main, unreachableSection(data.unreachable, "", "count", "bytes"));
		main.appendChild(element("footer", null, element("p", null, "heapsnap summary \u00b7 schema " + data.schema +
			" \u00b7 pid " + data.pid + ", exe " + (data.exe || "unknown") + ", " + runtimes(data.runtimes))));
	}

	if (kind === "summary")
		renderSummary();
	else
		renderDiff();
	document.body.dataset.rendered = "true";
})();

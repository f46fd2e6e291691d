	/* ---- where objects were allocated: in the page of a report whose snapshot records sites
	 * only (html_report.c places this inside report.js's function, after the page is drawn, so
	 * the page of a report without sites is what it always was). It adds to the drawn page: a
	 * section listing each type's main sites under the types' table, and under each retaining
	 * path the sites of the objects at its end. ---- */

	/* A site's first frames, innermost first; the whole stack in its title. */
	function siteText(site) {
		const stack = site.stack && site.stack.length ? site.stack : [site.site || site.function || "?"];
		return element("code", {class: "site", title: stack.join("\n")}, stack.slice(0, 3).join(" <- "));
	}

	/* The sites of a type or a path (its "sites", "sites_more", "without_site"), counted by
	 * `countKey`. */
	function siteList(owner, countKey) {
		const items = owner.sites.map((site) => element("li", {"data-site": site.site},
			formatCount(site[countKey]) + " at ", siteText(site)));
		const more = owner.sites_more || {};
		if (more.sites)
			items.push(element("li", {class: "more-sites"}, formatCount(more[countKey]) + " at " +
				formatCount(more.sites) + " more site" + (more.sites === 1 ? "" : "s")));
		const without = owner.without_site || {};
		if (without[countKey])
			items.push(element("li", {class: "no-site"}, formatCount(without[countKey]) +
				" with no recorded site (made before recording began, or unseen)"));
		return element("ul", {class: "sites"}, ...items);
	}

	/* When the sites were sampled (sites_sample_bytes), a note saying what the counts are. */
	function samplingNote() {
		if (!data.sites_sample_bytes)
			return null;
		return element("p", {class: "note sampled"}, "Sampled: one allocation per " +
			formatBytes(data.sites_sample_bytes) + " on average was recorded; the counts at sites " +
			"are of the sampled ones alone, the others count as without a site.");
	}

	/* Each row's type and where its objects were made (the first 25), after the element `after`. */
	function addTypeSites(after, rows, title, countKey) {
		const withSites = rows.filter((row) => row.sites);
		if (!after || !withSites.length)
			return;
		const nodes = [element("h2", {id: "type-sites"}, title), samplingNote(),
			...withSites.slice(0, 25).map((row) => element("section", {class: "type-sites", "data-type": row.type},
				element("h3", null, formatCount(row[countKey]) + " ", element("code", null, row.type)),
				siteList(row, countKey)))];
		let at = after;
		for (const node of nodes.filter((n) => n)) {
			at.after(node);
			at = node;
		}
	}

	/* Under each retaining path drawn (section#paths-N lists rows[N].retainers in order), its
	 * objects' sites. */
	function addPathSites(rows) {
		for (const section of main.querySelectorAll("section.type-paths")) {
			const row = rows[Number(section.id.replace("paths-", ""))];
			const items = section.querySelectorAll("ul.shapes > li");
			(row && row.retainers || []).forEach((retainer, k) => {
				if (retainer.sites && items[k])
					items[k].appendChild(siteList(retainer, "count"));
			});
		}
	}

	function addSites() {
		const diff = kind !== "summary";
		const rows = (diff ? data.grown : data.types) || [];
		const heading = document.getElementById(diff ? "grown" : "types");
		const word = diff && data.mode === "three" ? "left behind" : "new";
		addTypeSites(heading && heading.nextElementSibling, rows,
			diff ? "Where the " + word + " objects were allocated" : "Where they were allocated",
			diff ? "new" : "count");
		addPathSites(rows);
		const untyped = document.getElementById("sites");
		const note = samplingNote();
		if (untyped && note)
			untyped.after(note);
	}

	addSites();

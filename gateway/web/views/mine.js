// "Your latest stories" beside the worlds: the signed-in user's newest changes across
// every world (ListMyStories, BASIC view: a preview and a word count, not the text),
// drafts only at a click, each a link to the story in its world; and the user's counts
// and quotas (GetMyStats).

import * as api from "/assets/api.js";
import { fill, h, link, when, words } from "/assets/dom.js";
import { app, attempt } from "/assets/page.js";
import { pathOf } from "/assets/router.js";
import { openWorld } from "/assets/views/world.js";

const SHOWN = 5;

/** The section the worlds view puts in its sidebar; it fills itself. */
export function myStoriesSection() {
  const stats = h("p", { id: "my-stats", class: "muted" });
  const stories = h("div");
  attempt(() => drawMyStories(stories, false));
  attempt(() => drawMyStats(stats));
  return h("section", { id: "my-stories", "aria-labelledby": "my-stories-title" }, stats, stories);
}

/** int64 counts come as strings in JSON. */
const n = (value) => Number(value ?? 0).toLocaleString();

async function drawMyStats(el) {
  const stats = await api.call("GET", "/v1/users/me/stats");
  const left = (quota) => (quota?.unlimited ? "no limit" : `${n(quota?.left)} left`);
  fill(
    el,
    `${n(stats.worlds?.total)} worlds · ${n(stats.stories?.total)} stories · ${n(stats.words)} words · ` +
      `${n(stats.entities)} characters and things · ${n(stats.events)} events · ` +
      `public worlds ${left(stats.publicWorlds)}, public stories ${left(stats.publicStories)}`,
  );
}

async function drawMyStories(section, draftsOnly) {
  const query = { pageSize: String(SHOWN), ...(draftsOnly ? { filter: "visibility = DRAFT" } : {}) };
  const page = await api.call("GET", "/v1/users/me/stories", { query });
  const stories = page?.stories ?? [];
  const toggle = h("button", { type: "button", class: "link", "aria-pressed": String(draftsOnly) }, "Drafts only");
  toggle.addEventListener("click", () => attempt(() => drawMyStories(section, !draftsOnly)));
  fill(
    section,
    h("h3", { id: "my-stories-title", class: "list-title" }, draftsOnly ? "Your latest drafts" : "Your latest stories"),
    toggle,
    stories.length
      ? h("ul", { class: "plain my-stories" }, stories.map(storyItem))
      : h("p", { class: "muted" }, draftsOnly ? "No drafts." : "No stories yet."),
  );
}

function storyItem(story) {
  const place = { view: "worlds", worldId: story.worldId, tab: "stories", itemId: story.id };
  const count = story.wordCount ?? 0;
  return h(
    "li",
    {},
    link(
      pathOf(place),
      () => openWorld(story.worldId, place),
      // Named apart from the same story's link in its world's list, which may be shown too.
      { class: "link", "aria-label": `${story.title}, your latest` },
      story.title,
    ),
    h(
      "span",
      { class: "meta" },
      ` ${words(story.visibility)} · ${count.toLocaleString()} ${count === 1 ? "word" : "words"} · ${when(story.updateTime)}`,
    ),
    story.preview ? h("p", { class: "preview muted" }, story.preview) : null,
  );
}

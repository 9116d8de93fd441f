// Every view has an address: the path names the world, its tab and what is open in it
// (a story, a character, a place, an event, a job), so Back, Forward, a reload and a
// shared link all land on the same view. The gateway serves the page at each of these
// paths (gateway/src/web.rs, PAGE_PATHS).
//
//   /worlds                         the worlds, none open
//   /worlds/{id}[/stories]          a world, its stories   …/stories/{storyId}
//   /worlds/{id}/characters         its characters         …/characters/{entityId}
//   /worlds/{id}/places             its places             …/places/{locationId}
//   /worlds/{id}/timeline           its timeline           …/events/{eventId}
//   /worlds/{id}/jobs               its AI jobs            …/jobs/{jobId}
//   /worlds/{id}/settings           settings and sharing
//   /jobs/{jobId}                   one job on its own
//   /admin                          the users (administrators)

/** A tab's segment in the path, and the segment of an item open in it. */
const TABS = {
  stories: ["stories", "stories"],
  entities: ["characters", "characters"],
  places: ["places", "places"],
  timeline: ["timeline", "events"],
  jobs: ["jobs", "jobs"],
  settings: ["settings", null],
};

/**
 * The place a path names: `{ view, worldId, tab, itemId }` (view "worlds", "admin" or
 * "job"); an unknown path is the worlds view.
 */
export function placeOf(pathname) {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "admin" && parts.length === 1) return { view: "admin" };
  if (parts[0] === "jobs" && parts.length === 2) return { view: "job", itemId: parts[1] };
  if (parts[0] !== "worlds" || parts.length < 2) return { view: "worlds" };
  const [, worldId, segment, itemId] = parts;
  const tab = Object.keys(TABS).find((key) => TABS[key][itemId ? 1 : 0] === segment) ?? "stories";
  return { view: "worlds", worldId, tab, itemId: segment && itemId ? itemId : null };
}

/** The path of a place (as `placeOf` reads it). */
export function pathOf({ view, worldId, tab = "stories", itemId }) {
  if (view === "admin") return "/admin";
  if (view === "job") return `/jobs/${encodeURIComponent(itemId)}`;
  if (!worldId) return "/worlds";
  const world = `/worlds/${encodeURIComponent(worldId)}`;
  const [list, item] = TABS[tab] ?? TABS.stories;
  if (itemId && item) return `${world}/${item}/${encodeURIComponent(itemId)}`;
  return tab === "stories" ? world : `${world}/${list}`;
}

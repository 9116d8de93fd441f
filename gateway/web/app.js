// Fabula's web page: a small single-page app over the public REST API (see /docs).
// Views: signing in; worlds with their stories, entities, places, timeline, AI jobs,
// settings and sharing; and, for administrators, the users. Every error the API
// answers is said as a sentence in the page's live region.
//
// This module starts the page at the view its address names (a reload or a shared
// link; a visitor who is not signed in reads public worlds). `page.js` holds the state
// every view reads and the messages, `nav.js` the bar at the top and going from view
// to view, `router.js` the address of each view, and `views/` one module per view:
// account, worlds, world, items (characters, places, timeline), story, jobs, admin.
// Under them, `api.js` talks to the REST API, `messages.js` says what went wrong in the
// writer's words, `dom.js` builds elements, `watch.js` follows a job live and
// `drafts.js` keeps what is typed in an editor until it is saved.
// Views import each other both ways (the world's panel shows the stories tab, which
// redraws the panel): ES modules allow it, since no module calls another while loading.

import * as api from "/assets/api.js";
import { show, startSignedOut } from "/assets/nav.js";
import { app, say, sayError } from "/assets/page.js";
import { finishOidcSignIn, forgetEverything, rememberPlace, signedIn } from "/assets/views/account.js";

// What was typed is already in the browser (drafts.js): after signing in again the
// writer is back in the same place with it.
api.onSessionEnded((message) => {
  const typing = app.dirty;
  rememberPlace();
  forgetEverything();
  show("worlds");
  say(typing ? `${message} What you typed is kept in this browser and comes back once you have.` : message, "error");
});

window.addEventListener("beforeunload", (event) => {
  if (app.dirty) event.preventDefault();
});

async function start() {
  // Back from a provider: signed in, or (the error said) on as any other visit.
  if (location.pathname.startsWith("/signin/oidc/") && (await finishOidcSignIn())) return;
  let user = null;
  try {
    user = await api.resume();
  } catch (error) {
    sayError(error);
  }
  if (user) signedIn(user, null);
  else if (!api.hasSession()) startSignedOut();
  else show("worlds");
}

start();

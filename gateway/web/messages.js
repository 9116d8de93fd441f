// What went wrong, in the writer's words: an API error or a failed job's error as one
// sentence, from its stable reason (the `ErrorInfo` reason, or the job's error code),
// with each bad field named the way the page labels it. Reasons not listed here keep
// the server's own message, made a sentence.

/** A sentence for each reason a writer may meet; the rest keep the server's message. */
const SENTENCES = {
  SESSION_ENDED: "Your session has ended. Please log in again.",
  TOKEN_EXPIRED: "Your session has ended. Please log in again.",
  TOKEN_MISSING: "Your session has ended. Please log in again.",
  TOKEN_MALFORMED: "Your session has ended. Please log in again.",
  PERMISSION_DENIED: "You may not do this: the world's owner decides who may change it.",
  OWNER_NOT_AUTHORIZED: "You may no longer change this world, so the job stopped.",
  NOT_FOUND: "It is no longer there, or you may no longer see it.",
  EDIT_CONFLICT: "Someone else changed this after you opened it. Nothing was overwritten.",
  PROPOSAL_STALE:
    "Nothing was accepted: some of the chosen changes no longer fit, because what they change was edited after the proposal was made.",
  PROPOSAL_DECIDED: "This proposal was decided already: it can no longer change.",
  PROPOSAL_EXPIRED: "This proposal has expired: run the job again for a new one.",
  ADMIN_ONLY: "Only an administrator can do this.",
  USERNAME_TAKEN: "That username is taken already. Choose another.",
  EMAIL_TAKEN: "An account with that email exists already. Log in instead.",
  WRONG_PASSWORD: "The username or the password is not right.",
  USER_NOT_FOUND: "The username or the password is not right.",
  USER_DISABLED: "This account is disabled. An administrator can enable it again.",
  IDENTITY_NOT_LINKED:
    "An account with this email address exists already. Log in to it with your password, then link this sign-in.",
  EMAIL_NOT_VERIFIED: "The provider did not confirm your email address, which a new Fabula account needs.",
  INVALID_ID_TOKEN: "The provider's answer could not be trusted. Try signing in again.",
  OIDC_STATE_UNKNOWN: "This sign-in has expired or was used already. Start it again.",
  OIDC_CODE_REFUSED: "The provider refused this sign-in. Start it again.",
  OIDC_PROVIDER_UNAVAILABLE: "The sign-in provider cannot be reached just now. Try again later.",
  LOGIN_THROTTLED: "Too many attempts to log in. Wait a minute, then try again.",
  RATE_LIMITED: "Too many requests at once. Wait a moment, then try again.",
  DAILY_JOB_QUOTA_EXCEEDED: "You have run all of today's AI jobs. More are possible tomorrow.",
  TOO_MANY_ACTIVE_JOBS: "You have as many AI jobs running as you may. Wait for one to end, or cancel one.",
  MESSAGE_TOO_LARGE: "This is longer than Fabula accepts. Shorten it, then save again.",
  DEADLINE_EXCEEDED: "The server took too long to answer. Try again.",
  UNAVAILABLE: "Fabula cannot be reached just now. Check your connection, then try again.",
  SHUTTING_DOWN: "Fabula is restarting. Try again in a moment.",
  DATABASE_BUSY: "Fabula is busy. Try again in a moment.",
  STORY_SERVICE_REFUSED: "Fabula is busy. Try again in a moment.",
  STORY_SERVICE_UNAVAILABLE: "The stories could not be read just now. Try the job again in a moment.",
  MODEL_UNAVAILABLE: "The language model could not be reached. Try the job again later.",
  MODEL_ERROR: "The language model answered with an error. Try the job again later.",
  INVALID_MODEL_OUTPUT: "The language model's answer could not be used, even after asking again.",
  ATTEMPTS_EXHAUSTED: "The job was tried several times and failed each time.",
  INTERNAL: "Something went wrong on the server. Try again; if it keeps happening, tell an administrator.",
};

/** `"is required"` of field `world.displayName` → `"Display name is required."` */
export function violationSentence({ field, description }) {
  const last = String(field ?? "")
    .split(".")
    .at(-1)
    .replace(/\[\d+\]$/, "");
  const name = last
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replaceAll("_", " ")
    .toLowerCase();
  return sentence(name ? `${name} ${description}` : description);
}

/** Text as a sentence: a capital first letter and a full stop. */
export function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "";
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * What went wrong, once: the sentences of the bad fields when there are any, else the
 * reason's sentence, else the server's message.
 */
export function explain({ reason, message, violations = [] }) {
  if (violations.length) return violations.map(violationSentence).join(" ");
  return SENTENCES[reason] ?? sentence(message || "Something went wrong.");
}

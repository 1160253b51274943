// The paths anyone may open without signing in, and nothing else: every other path
// is the console's and signs in first. Pure, so the unit tests hold the list.

export type PublicRoute = { page: "quote"; token: string } | { page: "pricing"; segmentId: string | null };

/** The public page `path` names, or null for a console path. */
export function publicRoute(path: string): PublicRoute | null {
  // The prospect's quote page: the link the quote email carries, /quote/{token}.
  const quote = /^\/quote\/([^/]+)\/?$/.exec(path);
  if (quote?.[1]) return { page: "quote", token: safeDecode(quote[1]) };
  // The pricing storefront, /pricing or one segment's plans, /pricing/{segmentId}.
  if (path === "/pricing" || path === "/pricing/") return { page: "pricing", segmentId: null };
  const pricing = /^\/pricing\/([^/]+)\/?$/.exec(path);
  if (pricing?.[1]) return { page: "pricing", segmentId: safeDecode(pricing[1]) };
  return null;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed escape: the API answers 404 for it
  }
}

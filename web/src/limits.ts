// The named usage limits a tier carries (and a quote's customLimits may raise),
// in the order the screens show them.
export const LIMITS = ["listings", "imagesPerListing", "emailsProcessed", "aiResponses", "leads"] as const;
export type LimitName = (typeof LIMITS)[number];

export const LIMIT_LABEL: Record<LimitName, string> = {
  listings: "Listings",
  imagesPerListing: "Images per listing",
  emailsProcessed: "Emails processed",
  aiResponses: "AI responses",
  leads: "Leads",
};

/** A limit's label: the known ones by name, any other key in words ("maxGuests" → "Max guests"). */
export function limitLabel(name: string): string {
  const known = (LIMIT_LABEL as Record<string, string>)[name];
  if (known) return known;
  const words = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replace(/[_-]+/g, " ").trim().toLowerCase();
  return words ? words[0]!.toUpperCase() + words.slice(1) : name;
}

/** What a limit counts, for "Up to 50 guests": the label without a leading "max". */
export function limitNoun(name: string): string {
  return limitLabel(name).replace(/^max /i, "").toLowerCase();
}

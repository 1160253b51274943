// The prospect's quote page, /quote/{token}: the link the quote email carries. No
// sign-in: the token is the credential, and it goes only to this origin's API
// (`Referrer-Policy: same-origin`, nothing loaded from elsewhere). The quote as a
// document, its PDF, and Accept / Decline each behind a confirmation step.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, ok, type Schemas } from "../api/client";
import { publicApi } from "../api/public";
import { formatDate, formatMoney } from "../format";
import { Field, fieldError, Loading } from "../ui";
import { closedNotice, isOpen, periodWord, quoteLines, type PublicQuote } from "./document";
import "./quote.css";

type Acceptance = Schemas["QuoteAcceptance"];
type Step = "none" | "accept" | "decline";

const path = (token: string) => ({ params: { path: { token } } });

export function QuoteLinkPage({ token }: { token: string }) {
  const [quote, setQuote] = useState<PublicQuote | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [step, setStep] = useState<Step>("none");
  const [done, setDone] = useState<{ kind: "accepted"; answer: Acceptance } | { kind: "declined" } | null>(null);

  const load = async () => {
    try {
      setQuote(await ok(publicApi.GET("/api/quotes/view/{token}", path(token))));
      setLoadError(null);
    } catch (e) {
      setLoadError(e);
    }
  };
  useEffect(() => {
    void load();
  }, [token]);
  useEffect(() => {
    document.title = quote ? `Quote ${quote.quoteNumber} · Tierdesk` : "Your quote · Tierdesk";
  }, [quote?.quoteNumber]);

  return (
    <div class="qp">
      <header class="qp-top">
        <span class="brand">Tierdesk</span>
        <span class="muted">Your quote</span>
      </header>
      <main id="main" class="qp-main" tabIndex={-1}>
        {loadError ? (
          <LinkProblem error={loadError} />
        ) : !quote ? (
          <Loading what="Loading your quote" />
        ) : (
          <QuoteDocument
            token={token}
            q={quote}
            step={step}
            setStep={setStep}
            done={done}
            onAccepted={(answer) => {
              setDone({ kind: "accepted", answer });
              setStep("none");
              void load();
            }}
            onDeclined={(after) => {
              setDone({ kind: "declined" });
              setStep("none");
              setQuote(after);
            }}
            onStale={() => {
              setStep("none");
              void load();
            }}
          />
        )}
      </main>
    </div>
  );
}

function LinkProblem({ error }: { error: unknown }) {
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <div class="card qp-doc" role="alert" data-testid="quote-link-problem">
      <h1>{notFound ? "This link does not open a quote" : "The quote could not be loaded"}</h1>
      <p>
        {notFound
          ? "The link is incomplete, or a newer email replaced it (each new email from your sales contact carries a new link). Open the latest email, or ask your sales contact to send the quote again."
          : `Please try again in a moment. (${error instanceof Error ? error.message : String(error)})`}
      </p>
    </div>
  );
}

function QuoteDocument(props: {
  token: string;
  q: PublicQuote;
  step: Step;
  setStep: (s: Step) => void;
  done: { kind: "accepted"; answer: Acceptance } | { kind: "declined" } | null;
  onAccepted: (a: Acceptance) => void;
  onDeclined: (q: PublicQuote) => void;
  onStale: () => void;
}) {
  const { q, token, step } = props;
  const money = (cents: number) => formatMoney(cents, q.currency);
  const lines = quoteLines(q, money);
  const open = isOpen(q);
  const notice = closedNotice(q, formatDate);
  const per = periodWord(q);
  return (
    <article class="card qp-doc" data-testid="quote-document" aria-labelledby="qp-title">
      <div class="qp-head">
        <div>
          <h1 id="qp-title">Quote {q.quoteNumber}</h1>
          <p class="qp-for">
            Prepared for <strong>{q.prospectName}</strong>
            {q.prospectCompany ? <>, {q.prospectCompany}</> : null}
          </p>
        </div>
        <div class="qp-price" data-testid="quote-headline">
          <span class="qp-amount">{money(q.finalPrice)}</span>
          <span class="muted"> per {per}</span>
        </div>
      </div>

      {props.done?.kind === "accepted" && (
        <div class="banner ok" role="status" data-testid="quote-accepted-now">
          <strong>Thank you, the quote is accepted.</strong> Your subscription moves to the {q.baseTierName} plan at{" "}
          {money(props.done.answer.finalPrice)} per {per}. Your sales contact has been told.
        </div>
      )}
      {props.done?.kind === "declined" && (
        <div class="banner info" role="status" data-testid="quote-declined-now">
          <strong>You declined this quote.</strong> Your sales contact has been told. Thank you for letting us know.
        </div>
      )}
      {notice && !props.done && (
        <div class={`banner ${notice.tone}`} role="status" data-testid="quote-state">
          <strong>{notice.title}.</strong> {notice.text}
        </div>
      )}

      <dl class="props qp-terms-list" data-testid="quote-facts">
        <dt>Plan</dt>
        <dd>
          {q.baseTierName}, billed {q.billingPeriod}
        </dd>
        <dt>Valid until</dt>
        <dd>{formatDate(q.validUntil)}</dd>
        {q.commitmentMonths ? (
          <>
            <dt>Commitment</dt>
            <dd>{q.commitmentMonths} months</dd>
          </>
        ) : null}
        {q.billingPeriod === "yearly" && (
          <>
            <dt>Per month</dt>
            <dd>{money(q.pricePerMonth)} (a twelfth of the yearly price)</dd>
          </>
        )}
      </dl>

      <div class="table-wrap">
        <table class="qp-lines" data-testid="quote-lines">
          <thead>
            <tr>
              <th>Item</th>
              <th class="num">Amount per {per}</th>
            </tr>
          </thead>
          <tbody>
            {lines.map((l, i) => (
              <tr key={i} class={`qp-${l.kind}`}>
                {l.kind === "total" ? <th scope="row">{l.label}</th> : <td class="wrap">{l.label}</td>}
                {l.kind === "total" ? (
                  <th class="num" data-testid="quote-total">
                    {money(l.amount ?? 0)}
                  </th>
                ) : (
                  <td class="num">{l.amount === null ? "included" : l.amount < 0 ? `−${money(-l.amount)}` : money(l.amount)}</td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <section class="qp-section" aria-labelledby="qp-terms">
        <h2 id="qp-terms">Terms and conditions</h2>
        <p class="qp-terms" data-testid="quote-terms">
          {q.termsAndConditions}
        </p>
      </section>

      <div class="qp-actions">
        <a
          class="button secondary"
          href={`/api/quotes/view/${encodeURIComponent(token)}/pdf`}
          download={`${q.quoteNumber}.pdf`}
          data-testid="quote-pdf-download"
        >
          Download PDF
        </a>
        {open && step === "none" && (
          <>
            <button type="button" onClick={() => props.setStep("accept")}>
              Accept quote
            </button>
            <button type="button" class="secondary" onClick={() => props.setStep("decline")}>
              Decline
            </button>
          </>
        )}
      </div>
      {open && step === "accept" && <AcceptStep {...props} />}
      {open && step === "decline" && <DeclineStep {...props} />}
    </article>
  );
}

/** A step's heading takes the focus, so keyboard and screen-reader users land in it. */
function useFocus() {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return ref;
}

/** After a refusal because the quote changed (expired, cancelled, answered elsewhere),
 * the page reloads it and its status says why. */
function isStale(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 409 || e.status === 404);
}

/**
 * One answer to the quote (accept or decline) in flight: busy while it runs, the
 * API's refusal kept for the form, and a refusal that means the quote changed
 * meanwhile (`isStale`) reloads it.
 */
function useAnswer(onStale: () => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (send: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await send();
    } catch (e) {
      setError(e);
      if (isStale(e)) onStale();
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, submit };
}

function AcceptStep(props: {
  token: string;
  q: PublicQuote;
  setStep: (s: Step) => void;
  onAccepted: (a: Acceptance) => void;
  onStale: () => void;
}) {
  const { q } = props;
  const [name, setName] = useState("");
  const { busy, error, setError, submit } = useAnswer(props.onStale);
  const heading = useFocus();
  const money = (cents: number) => formatMoney(cents, q.currency);
  const confirm = () =>
    submit(async () => {
      const trimmed = name.trim();
      const answer = await ok(
        publicApi.POST("/api/quotes/view/{token}/accept", {
          ...path(props.token),
          body: trimmed ? { acceptedBy: trimmed } : {},
        }),
      );
      props.onAccepted(answer);
    });
  return (
    <section class="qp-confirm" aria-labelledby="qp-accept" data-testid="accept-step">
      <h2 id="qp-accept" tabIndex={-1} ref={heading}>
        Accept quote {q.quoteNumber}?
      </h2>
      <p>
        You accept the {q.baseTierName} plan, billed {q.billingPeriod}, at <strong>{money(q.finalPrice)}</strong> per{" "}
        {periodWord(q)}
        {q.commitmentMonths ? `, for a commitment of ${q.commitmentMonths} months` : ""}, under the terms above. Your
        subscription changes to this plan as soon as you confirm.
      </p>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void confirm();
        }}
      >
        <Field label="Your name (optional)" name="acceptedBy" error={fieldError(error, "acceptedBy")} hint="Recorded with the acceptance.">
          {(id, describedBy) => (
            <input id={id} aria-describedby={describedBy} value={name} maxLength={200} autoComplete="name" onInput={(e) => {
                setName(e.currentTarget.value);
                setError(null);
              }} />
          )}
        </Field>
        <ProblemBanner error={error} shown={["acceptedBy"]} />
        <div class="form-actions">
          <button type="submit" disabled={busy}>
            {busy ? "Accepting…" : "Confirm acceptance"}
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => props.setStep("none")}>
            Back
          </button>
        </div>
      </form>
    </section>
  );
}

function DeclineStep(props: {
  token: string;
  q: PublicQuote;
  setStep: (s: Step) => void;
  onDeclined: (q: PublicQuote) => void;
  onStale: () => void;
}) {
  const { q } = props;
  const [reason, setReason] = useState("");
  const { busy, error, setError, submit } = useAnswer(props.onStale);
  const heading = useFocus();
  const confirm = () =>
    submit(async () => {
      // The API needs the reason (1 to 1,000 characters) and names the field if it is missing.
      const after = await ok(publicApi.POST("/api/quotes/view/{token}/reject", { ...path(props.token), body: { reason: reason.trim() } }));
      props.onDeclined(after);
    });
  return (
    <section class="qp-confirm" aria-labelledby="qp-decline" data-testid="decline-step">
      <h2 id="qp-decline" tabIndex={-1} ref={heading}>
        Decline quote {q.quoteNumber}?
      </h2>
      <p>The quote closes and can no longer be accepted from this link. A short reason helps your sales contact.</p>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void confirm();
        }}
      >
        <Field label="Reason" name="reason" error={fieldError(error, "reason")} hint="For example: the budget, the timing, another provider.">
          {(id, describedBy) => (
            <textarea id={id} aria-describedby={describedBy} value={reason} maxLength={1000} onInput={(e) => {
                setReason(e.currentTarget.value);
                setError(null); // the API's message was about what was typed before
              }} />
          )}
        </Field>
        <ProblemBanner error={error} shown={["reason"]} />
        <div class="form-actions">
          <button type="submit" class="danger" disabled={busy}>
            {busy ? "Declining…" : "Confirm decline"}
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => props.setStep("none")}>
            Back
          </button>
        </div>
      </form>
    </section>
  );
}

/** A refusal in the prospect's words: the API's message, without console jargon. */
function ProblemBanner({ error, shown }: { error: unknown; shown: string[] }) {
  if (!error) return null;
  if (error instanceof ApiError && error.status === 400 && Object.keys(error.fields).every((f) => shown.includes(f))) return null;
  const text =
    error instanceof ApiError && error.code === "quote_expired"
      ? "This quote has expired and can no longer be accepted."
      : error instanceof ApiError && error.status === 409
        ? "This quote changed meanwhile (it may have been answered, withdrawn or expired); its current state is shown above."
        : error instanceof Error
          ? error.message
          : String(error);
  return (
    <div class="banner error" role="alert" data-testid="quote-action-error">
      {text}
    </div>
  );
}

export function QuotesScreen(_props: { sub?: string }) {
  return <h1>Quotes</h1>;
}

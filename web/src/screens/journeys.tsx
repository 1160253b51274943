export function JourneysScreen(_props: { sub?: string }) {
  return <h1>Journeys</h1>;
}

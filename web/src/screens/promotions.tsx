export function PromotionsScreen(_props: { sub?: string }) {
  return <h1>Promotions</h1>;
}

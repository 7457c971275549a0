/** `?` to `$1, $2, …` for PostgreSQL. Our SQL has no `?` inside string literals. */
export function toNumberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

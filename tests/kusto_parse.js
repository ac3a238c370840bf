// Parse and analyze KQL queries with Microsoft's Kusto.Language (npm package
// @kusto/language-service-next) and print their diagnostics.
//
// Reads JSON on stdin: {"table": "imWebSession", "schema": "(Column:type, ...)",
// "functions": [[name, parameter list, body], ...], "queries": [...]}. The table
// and functions are declared in a database, so that unknown columns, functions
// and type errors are reported along with syntax errors. Writes a JSON array with
// one list of "offset: message" strings per query.
const path = require("path");
const dir = path.dirname(require.resolve("@kusto/language-service-next/package.json"));
global.Bridge = require(path.join(dir, "bridge.js"));
require(path.join(dir, "Kusto.Language.Bridge.js"));
const Kusto = global.Kusto.Language;
const Symbols = Kusto.Symbols;

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const members = [new Symbols.TableSymbol.$ctor7(request.table, request.schema, null)];
  for (const [name, parameters, body] of request.functions) {
    members.push(new Symbols.FunctionSymbol.$ctor16(name, parameters, body, null));
  }
  const globals = Kusto.GlobalState.Default.WithDatabase(new Symbols.DatabaseSymbol.ctor("db", members));

  const results = request.queries.map((query) => {
    const diagnostics = Kusto.KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics();
    const messages = [];
    for (let index = 0; index < diagnostics.Count; index++) {
      const diagnostic = diagnostics.getItem(index);
      messages.push(`${diagnostic.Start}: ${diagnostic.Message}`);
    }
    return messages;
  });
  process.stdout.write(JSON.stringify(results));
});

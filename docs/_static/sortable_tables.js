// Click a column header of an execution-times table to sort by it (no library, no network).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.sg-datatable").forEach(function (table) {
    var body = table.tBodies[0];
    if (!body || !table.tHead) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, column) {
      var descending = true;
      cell.style.cursor = "pointer";
      cell.title = "Sort by this column";
      cell.addEventListener("click", function () {
        var rows = Array.prototype.slice.call(body.rows);
        var value = function (row) {
          var text = row.cells[column].textContent.trim();
          var parts = text.split(":").map(Number);
          if (parts.every(function (p) { return !isNaN(p); })) {
            return parts.reduce(function (acc, p) { return acc * 60 + p; }, 0);
          }
          return text.toLowerCase();
        };
        rows.sort(function (a, b) {
          var va = value(a), vb = value(b);
          var order = va < vb ? -1 : va > vb ? 1 : 0;
          return descending ? -order : order;
        });
        descending = !descending;
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
});

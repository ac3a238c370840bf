SELECT *
FROM websession
WHERE coalesce(lower(CAST("Url" AS VARCHAR)) LIKE lower('%.class') ESCAPE '\', false);

module ctxlab-peer-go

go 1.19
